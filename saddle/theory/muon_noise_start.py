r"""Muon from the saddle (a_0 = 0): a linear-response phase driven by noise, then ballistic.

**Setting.** The lab's Muon step (``saddle/optimizers/_muon.py``, EMA form, Nesterov) is

    M_{t+1} = beta M_t + (1 - beta) G_t,   U_t = (1 - beta) G_t + beta M_{t+1},
    W_{t+1} = W_t - eta k_s orth(U_t),

with k_s the scaling factor (Keller: sqrt(max(1, m/n))) and orth the exact polar factor or
the 5-step quintic Newton-Schulz iteration (normalized by ||U||_F + eps). On the spectral saddle
(quartic = 0, one escape mode) the gradient along E = p q^T is -gamma a_t, so the escape
coordinate a_t = <W_t - W*, E> moves by

    a_{t+1} = a_t + eta k_s <orth(-U_t), E>.

In -U_t the escape mode contributes theta_t E with theta_t = gamma (filtered a)_t: the same
filter applied to gamma a (DC gain 1: (1 - beta)(1 + beta) on the current gradient, beta^2 on
the buffer). The noise contributes N_t = sum_j w_j Xi_{t-j}, entries of standard deviation
sigma_f = s_e ||w||_2 (s_e the per-entry noise std, ||w||_2^2 = (1 - beta)^2 (1 + beta)^2 +
beta^4 (1 - beta)^2/(1 - beta^2): 0.0304 at beta = 0.95, sigma_f = 0.174 s_e).

**1. Linear response below the spiked threshold.** For theta small against the noise,
<E, orth(theta E + N)> = chi theta + xi + O(theta^2). The fluctuation xi is the component of
orth(N) along E: for rotation-invariant Gaussian N, orth(N) is a Haar partial isometry and
Var xi = q / max(m, n) (q = 1 for polar, q < 1 for Newton-Schulz; ``theory.diffusive``), with
the autocorrelation f(rho_U(k)) that ``diffusive.orth_correlation`` measures. The
susceptibility chi is the mean Frechet derivative of orth at N along E. Write N = U S V^T
(m >= n, else transpose), H = U^T E V (n x n) and E_perp = (I - U U^T) E V. For a singular-value
function orth(N) = U f(S/nu) V^T (nu = 1 for polar with f = 1; nu = ||N||_F for Newton-Schulz,
f the NS scalar polynomial) the Daleckii-Krein formula gives

    D orth(N)[E] = U K V^T + E_perp diag(f(x)/s) V^T,
    K_ij = sym(H)_ij (f_i - f_j)/(s_i - s_j) + skew(H)_ij (f_i + f_j)/(s_i + s_j)   (i != j),
    K_ii = H_ii f'(x_i)/nu,

(the derivative of the Frobenius normalization adds O(1/n) and is left out). For E
independent of N (Haar U, V) E H_ij^2 = 1/(mn), E H_ij H_ji = 0 (i != j) and
E ||p^T (I - U U^T)||^2 = (m - n)/m, so

    chi = 1/(mn) [ sum_{i != j} (1/2)((f_i - f_j)/(s_i - s_j) + (f_i + f_j)/(s_i + s_j))
                   + sum_i f'(x_i)/nu ] + (m - n)/(mn) sum_i f(x_i)/s_i.

For polar this is chi = 1/(mn) sum_{i != j} 1/(s_i + s_j) + (m - n)/(mn) sum_i 1/s_i.
With s_i = sigma_f sqrt(m) mu_i, mu_i the classical locations (quantiles (i - 1/2)/n) of the
Marchenko-Pastur singular-value law of ratio n/m (quarter circle on [0, 2] for m = n), this is
a documented quadrature; chi ~ c / (sigma_f sqrt(max(m, n))) with c -> 0.849 for square shapes
(0.737, 0.786, 0.814 at n = 16, 32, 64: a finite-n average, checked against a Monte Carlo
finite difference of the polar factor in the tests; the quadrature leaves out the level
repulsion of the smallest singular values and runs 2-7% low at n = 16-32).

**Newton-Schulz in phase 1.** NS is not polar-like here: its scalar map f (5 quintic steps on
x = s/||N||_F) has gain a^5 = 485 at x -> 0 and oscillates in [0.7, 1.2] once saturated. The
noise's normalized singular values are x ~ mu/sqrt(n) (mu in [0, 2]): the smallest sit on the
steep part of f, where f'(x)/nu and the divided difference (f_i - f_j)/(s_i - s_j) add to the
response, and the saturated ones answer with f/s instead of 1/s. The formula above with NS's f
is what the estimate uses: c_NS/c_polar = 1.04 at n = 16, 0.87 at 32, 0.85 at 64 (checked
against finite differences of the NS iteration itself). The fluctuation's variance factor
q < 1 and its autocorrelation are NS's own (``diffusive.orth_correlation``), and so is the
mean response phi below. Nothing in the estimate assumes a polar-like NS.

So while gamma |a| stays small against sigma_f sqrt(max(m, n)), the pair (a, M) is a linear
system driven by xi:

    a_{t+1} = a_t + eta k_s chi ((1 - beta^2) gamma a_t + beta^2 M_t) + eta k_s xi_t,
    M_{t+1} = beta M_t + (1 - beta) gamma a_t.

Its growing eigenvalue g > 1 (right eigenvector r with r_a = 1, left l with l r = 1) gives, as
for SGD (``theory.sgd``), a_t ~ g^t Z with Z Gaussian of variance

    s^2 = (eta k_s l_a)^2 (q / max(m, n)) F_g / (g^2 - 1),   F_g = 1 + 2 sum_k f(rho_U(k)) g^{-k}.

The median of |Z| is z s with z = sqrt(2) erfinv(1/2) = 0.6745 (a_0 = 0: the SGD law's
lambda = 0 case).

**2. Spiked threshold and the ballistic phase.** The linear law holds up to x = theta /
(sigma_f (mn)^{1/4}) ~ X_C = 0.3; the BBP threshold is x = 1 (``theory.spiked``): past it the
top singular pair of -U aligns with E and <orth(-U), E> -> 1 - (overlap loss), the ballistic
phase of ``theory.muon``. Between, the mean response phi(x) = E <E, orth(theta E + N)> is
measured once per shape by Monte Carlo (a fixed seed, common random numbers across x, the
config's own shape and orthogonalizer). From a_c (where x = X_C along the growing mode) the
escape follows the deterministic map a <- a + eta k_s phi(x_t) with the filter above (the
noise's share of the step is then small against the signal's). The estimate is

    med tau ~ ln(a_c / (z s)) / ln g + T_c,

T_c the steps of that map from a_c to R (at least (R - a_c)/(eta k_s), as phi <= 1: the
ballistic phase of ``theory.muon`` is its end).

**Where the Gaussian endpoint law is not enough.** The law takes the escape time from the
endpoint a_t ~ g^t Z. When R is within a few e-foldings of the spread (R/(z s) small: a small
gamma, or a large noise), the noise still carries a across R and the first passage comes
earlier: measured estimate/simulated 1.2-1.3 at R/(z s) = 19-26 and 1.5-3 at 3-8, against
0.9-1.1 at R/(z s) >= 50. The assumption ``exponential_escape`` asks ln(R/(z s)) >= 3.

**What the bulk does.** The bulk's gradient P(Lambda o C_bulk)Q^T adds to N; the estimate
leaves it out. Each bulk mode of curvature lambda is, in the same linear response, the
restoring system

    c_{t+1} = c_t - eta k_s chi ((1 - beta^2) lambda c_t + beta^2 M_t) + eta k_s xi_t,
    M_{t+1} = beta M_t + (1 - beta) lambda c_t,

stable while its 2 x 2 map has spectral radius < 1 (``bulk_spectral_radius``, at the
stiffest mode lambda_max). Measured: inside that edge the bulk does not change the escape
(the regime map's constant bulks lambda = 0.01, 1 and 10 give the same medians within the
4-run scatter; at 32 x 32, lr 0.02, 16 seeds, simulated/estimated 0.95 at lambda = 1, 1.2
at 10, 1.25 at 15), past it the escape slows (1.5 at lambda = 20, 1.7 at 30, 3.7 at 100,
25 at 1000: the oscillating bulk takes over the orthogonalized momentum). Why the stable
bulk's own fluctuations, which the linear response puts above the noise in size, do not
lower chi is not derived here. The assumption ``stable_bulk`` asks the whole spectrum to be
inside the edge; it is conservative for a heavy tail: the power-law bulk (alpha = 1.5, a few
modes past the edge) still follows the estimate at 32^2 and 64^2 (ratios 0.89-1.10) and
misses at 128^2 (0.41-0.66, matched_spectral), where about 70 modes are past it.

**Noise models.** Gaussian rotation-invariant noise (isotropic, opnorm) is covered exactly.
Student-t noise (df > 2, finite variance) is covered through the momentum's averaging: N is a
weighted sum of (sum w)^2/||w||^2 ~ 33 draws (beta = 0.95), close to Gaussian (measured on
the map: ratios 0.87-1.17). Kronecker noise (Zipf row variances) changes the singular-value
law and, on the coherent basis, puts E on the noisiest row: the estimate is 0.47-0.70 of the
measured median there, so it is not covered. Low-rank noise turned onto E is not a Gaussian
bulk (its per-entry law is not the matrix's spectrum): not covered, although the numbers
happen to agree (0.88-1.16) because its entry scale sigma/sqrt(mn) keeps chi large.

**Dimension exponent.** For isotropic noise at square m = n: chi ~ 1/(sigma_f sqrt(n)), so
the growth per step eta gamma chi ~ eta/sqrt(n); the fluctuation's variance per step is
eta^2 q/n; a_c ~ sigma_f sqrt(n)/gamma; the ballistic part takes ~ (R - a_c)/eta steps. With
``matched_spectral`` (Muon's eta fixed, 0.02 on square shapes) the growth rate falls as
n^{-1/2} while ln(a_c/(z s)) grows slowly: b = 0.14. With ``matched_rms`` (eta ~ sqrt(n))
growth and spread are D-free, a_c grows as sqrt(n) and the ballistic time falls as
n^{-1/2}: b = -0.14 to -0.09 (the ballistic part's -1/4 diluted by the D-free phase 1).
Under opnorm noise sigma_f sqrt(n) is fixed, so chi sqrt(n), a_c and the spread are D-free:
b = 0.05 (matched_spectral, from NS's n-dependence) and -0.22 (matched_rms: the ballistic
time ~ 1/eta). Student-t is isotropic's law. The ``muon_noise_start_exponent_*`` results
compute the local exponents for any config; at the regime map's base (Newton-Schulz,
gamma = 0.1, R = 1, isotropic and student_t sigma = 0.01, opnorm sigma = 0.2) they are:

| noise | matched_rms | matched_spectral |
|---|---|---|
| isotropic, student_t | -0.14, -0.09 | 0.14, 0.14 |
| opnorm | -0.22, -0.22 | 0.05, 0.04 |
| kronecker, lowrank | not covered | not covered |

(b between 32^2 and 64^2, then between 64^2 and 128^2.)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.special
import sympy as sp

from ..optimizers import NS_COEFFS, MuonSpec, muon_scale
from ..registry import NOISES
from ._core import SPECTRAL, Assumption, Result
from .diffusive import _reduced, momentum_autocorrelation, newton_schulz_np, orth_correlation
from .noise_facts import noise_facts

MUON = MuonSpec.name

__all__ = [
    "filter_weights", "singular_locations", "ns_scalar", "susceptibility", "response_curve",
    "linear_phase", "noise_start_median", "MUON_NOISE_START", "NOISE_START_EXPONENTS",
    "X_C", "Z_HALF", "bulk_spectral_radius",
]

# phi is measured on shapes with at most this many rows or columns (same aspect ratio): in
# units of the threshold it hardly moves with the size (module docstring)
PHI_SHAPE_CAP = 32
X_C = 0.3  # end of the linear-response phase, in units of the BBP threshold
Z_HALF = math.sqrt(2) * float(scipy.special.erfinv(0.5))  # median of |N(0, 1)|
# x = theta / (sigma_f (mn)^{1/4}) at which the mean response phi is measured
X_GRID = np.array([0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0,
                   2.5, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 25.0])


def filter_weights(beta: float, nesterov: bool, terms: int | None = None) -> np.ndarray:
    """w_j, the weight of G_{t-j} in U_t (EMA momentum, Nesterov or not)."""
    J = terms or int(80 / max(1 - beta, 1e-3)) + 10
    w = (1 - beta) * beta ** np.arange(J)
    if nesterov:  # U = (1 - beta) G + beta M
        w = beta * w
        w[0] += 1 - beta
    return w


def singular_locations(m: int, n: int) -> np.ndarray:
    """Classical locations of the singular values of an m x n standard Gaussian matrix
    (m >= n): sqrt(m) times the (i - 1/2)/n quantiles of the Marchenko-Pastur singular-value
    law of ratio y = n/m (the quarter circle on [0, 2] when m = n)."""
    m, n = max(m, n), min(m, n)
    y = n / m
    lo, hi = (1 - math.sqrt(y)) ** 2, (1 + math.sqrt(y)) ** 2
    # the MP density of lambda = s^2/m on [lo, hi]; Chebyshev-like grid resolves the edges
    u = np.linspace(0, math.pi, 20001)
    lam = lo + (hi - lo) * (1 - np.cos(u)) / 2
    lam = np.maximum(lam, 1e-300)  # m = n: the density's 1/sqrt(lambda) edge at 0
    dens = np.sqrt(np.maximum((hi - lam) * (lam - lo), 0)) / (2 * math.pi * y * lam)
    mass = dens * (hi - lo) * np.sin(u) / 2  # d cdf / du
    cdf = np.concatenate([[0.0], np.cumsum(mass[1:] + mass[:-1]) / 2 * (u[1] - u[0])])
    cdf /= cdf[-1]
    lam_q = np.interp((np.arange(n) + 0.5) / n, cdf, lam)
    return np.sqrt(m * lam_q)


def ns_scalar(x, steps: int, coeffs=NS_COEFFS):
    """The Newton-Schulz scalar map on normalized singular values, and its derivative."""
    a, b, c = coeffs
    x = np.asarray(x, float)
    d = np.ones_like(x)
    for _ in range(steps):
        d = d * (a + 3 * b * x**2 + 5 * c * x**4)
        x = a * x + b * x**3 + c * x**5
    return x, d


@lru_cache(maxsize=256)
def susceptibility(m: int, n: int, ns_steps: int | None = None,
                   coeffs: tuple = tuple(NS_COEFFS)) -> float:
    """c with chi = c / s_e: the mean Frechet derivative of orth along an incoherent E at an
    m x n matrix of iid entries of std s_e (module docstring; ``ns_steps`` None: polar)."""
    s = singular_locations(m, n)
    big, small = max(m, n), min(m, n)
    off = ~np.eye(small, dtype=bool)
    if ns_steps is None:
        f, fp, nu = np.ones_like(s), np.zeros_like(s), 1.0
    else:
        nu = math.sqrt(float(np.sum(s * s)))
        f, fp = ns_scalar(s / nu, ns_steps, coeffs)
    si, sj = s[:, None], s[None, :]
    fi, fj = f[:, None], f[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        dq = np.where(off, (fi - fj) / (si - sj), 0.0)
    dq = np.where(np.isfinite(dq), dq, 0.0)  # coincident locations: the limit f'/nu ~ 0
    pair = 0.5 * (dq + (fi + fj) / (si + sj))
    inner = float(np.sum(pair[off]) + np.sum(fp) / nu)
    return inner / (m * n) + (big - small) / (m * n) * float(np.sum(f / s))


@lru_cache(maxsize=64)
def response_curve(m: int, n: int, ns_steps: int | None = None,
                   coeffs: tuple = tuple(NS_COEFFS), seed: int = 0) -> np.ndarray:
    """phi(x) on :data:`X_GRID`: E <E, orth(theta E + Z)> for Z with iid N(0, 1) entries,
    theta = x (mn)^{1/4}, E = e_0 e_0^T (any fixed E: Z is rotation invariant). Monte Carlo
    with a fixed seed and the same draws at every x."""
    rng = np.random.default_rng(seed)
    batch = max(8, min(64, math.ceil(4e5 / (m * n))))
    Z = rng.standard_normal((batch, m, n))
    out = []
    for x in X_GRID:
        X = Z.copy()
        X[:, 0, 0] += x * (m * n) ** 0.25
        if ns_steps is None:
            u, _, vt = np.linalg.svd(X, full_matrices=False)
            o = np.einsum("bi,bi->b", u[:, 0, :], vt[:, :, 0])
        else:
            o = newton_schulz_np(X, ns_steps, coeffs)[:, 0, 0]
        out.append(float(np.mean(o)))
    out = np.array(out)
    return out - out[0]  # phi(0) = 0 by symmetry; remove the draws' mean


def _orth_autocorrelation(m, n, beta, nesterov, ns_steps, coeffs, lags):
    """(q, f(rho_U(k)) for k = 1..lags): the orth fluctuation's variance factor and
    autocorrelation under white Gaussian gradients (``theory.diffusive``)."""
    from .diffusive import _R_GRID

    q, f = orth_correlation(m, n, ns_steps, tuple(coeffs))
    rho = momentum_autocorrelation(beta, nesterov, lags)[1:]
    grid = np.sqrt(1 - np.concatenate([[0.0], _R_GRID, [1.0]]))
    vals = np.concatenate([[0.0], f, [1.0]])
    return q, np.interp(np.sqrt(1 - np.clip(rho, 0, 1)), grid[::-1], vals[::-1])


def _entry_std(c) -> float:
    facts = noise_facts(c)
    s = float(facts.entry_std)
    if not s > 0 or not math.isfinite(s):
        raise ValueError("no noise: the start from a0 = 0 is not driven")
    return s


def _system(c):
    """The linear-phase matrices: state (a, M); A, the noise input b, and scales."""
    beta, nest = float(c.momentum), bool(c.nesterov)
    step = c.learning_rate * muon_scale((c.m, c.n), c.scaling)
    w = filter_weights(beta, nest)
    sig_f = _entry_std(c) * float(np.linalg.norm(w))
    ns = None if c.orthogonalizer == "polar" else c.ns_steps
    chi = susceptibility(c.m, c.n, ns, tuple(NS_COEFFS)) / sig_f
    cur, buf = (float(w[0]), beta * beta) if nest else (1 - beta, beta)  # S = cur ga + buf M
    A = np.array([[1 + step * chi * c.gamma * cur, step * chi * buf],
                  [(1 - beta) * c.gamma, beta]])
    return A, step, sig_f, chi, ns


@lru_cache(maxsize=512)
def _linear_phase(c):
    A, step, sig_f, chi, ns = _system(c)
    ev, R = np.linalg.eig(A)
    k = int(np.argmax(ev.real))
    g = float(ev[k].real)
    if not g > 1:
        raise ValueError("no growing mode")
    r = R[:, k].real / R[0, k].real
    Li = np.linalg.inv(R)
    l = Li[k].real * R[0, k].real  # l r = 1 with r_a = 1
    lags = int(60 / max(1 - c.momentum, 1e-3))
    q, fk = _orth_autocorrelation(c.m, c.n, c.momentum, bool(c.nesterov), ns,
                                  tuple(NS_COEFFS), lags)
    Fg = 1 + 2 * float(np.sum(fk * g ** -np.arange(1, lags + 1)))
    var_xi = q / max(c.m, c.n)
    s = abs(step * l[0]) * math.sqrt(var_xi * Fg / (g * g - 1))
    return dict(g=g, s=s, r=r, chi=chi, sig_f=sig_f, step=step, F_g=Fg, q=q, l_a=float(l[0]))


def linear_phase(c) -> dict:
    """g, s (the spread of Z), r (growing eigenvector), chi, sigma_f, step = eta k_s, F_g."""
    return _linear_phase(_key(c))


def _key(c):
    return c.replace(seed=0, seeds=1, max_steps=1, landscape_seed=0)


def _phi(c):
    ns = None if c.orthogonalizer == "polar" else c.ns_steps
    m, n = _reduced(c.m, c.n, PHI_SHAPE_CAP)
    curve = response_curve(m, n, ns, tuple(NS_COEFFS))
    return lambda x: float(np.interp(x, X_GRID, curve))


@lru_cache(maxsize=512)
def _crossover(c) -> tuple[float, float]:
    """(a_c, T_c): the level where the growing mode reaches x = X_C, and the steps of the
    mean map from there to R."""
    lp = _linear_phase(c)
    beta = float(c.momentum)
    nest = bool(c.nesterov)
    cur, buf = ((1 - beta) * (1 + beta), beta * beta) if nest else (1 - beta, beta)
    unit = lp["sig_f"] * (c.m * c.n) ** 0.25  # theta of the BBP threshold
    gain = c.gamma * cur + buf * lp["r"][1]  # theta per unit a along the growing mode
    a_c = X_C * unit / gain
    phi = _phi(c)
    a, M = a_c, lp["r"][1] * a_c
    limit = 20 * (c.radius / (lp["step"] * max(phi(X_GRID[-1]), 1e-3)) + 1 / (1 - beta))
    t = 0
    while a < c.radius:
        if t > limit:
            raise ValueError("the mean map does not reach R")
        ga = c.gamma * a
        M_new = beta * M + (1 - beta) * ga
        theta = (1 - beta) * ga + beta * M_new if nest else M_new
        a, M = a + lp["step"] * phi(theta / unit), M_new
        t += 1
    return a_c, float(t)


def noise_start_median(c) -> float:
    """The estimate in plain Python (the Result evaluates the same formula through sympy)."""
    p = _params(c)
    return math.log(p["a_c"] / (p["z"] * p["s"])) / math.log(p["g"]) + p["T_c"]


def _params(c) -> dict[str, float]:
    # the cheap hypotheses first: a head start or a flat mode is another result's case, and
    # the Monte Carlo parts are then not worth computing
    if c.optimizer != MUON or not c.gamma > 0 or c.init_escape:
        raise ValueError("not Muon from the saddle of an unstable mode (a_0 = 0, gamma > 0)")
    k = _key(c)
    lp = _linear_phase(k)
    a_c, T_c = _crossover(k)
    return {"a_c": a_c, "s": lp["s"], "g": lp["g"], "T_c": T_c, "z": Z_HALF}


# ---- assumptions -----------------------------------------------------------------------------

MIN_EFFECTIVE_DRAWS = 10  # (sum w)^2 / ||w||^2: draws the momentum averages (heavy tails)


def _noise_covered(c) -> bool:
    """Rotation-invariant noise Gaussian along every direction (isotropic, opnorm), or iid
    entries of a shape-free law with finite variance (student_t, df > 2) that the momentum
    averages over enough draws to be close to Gaussian. Kronecker (row scales), low-rank and
    state-dependent noise are not a Gaussian matrix of iid entries."""
    spec = NOISES[c.noise]
    if spec.state_dependent or not math.isfinite(_entry_std(c)):
        return False
    if spec.rotation_invariant and spec.gaussian_along_e:
        return True
    if spec.shape_free_entries and not spec.rotation_invariant:
        w = filter_weights(float(c.momentum), bool(c.nesterov))
        return float(np.sum(w)) ** 2 / float(np.sum(w * w)) >= MIN_EFFECTIVE_DRAWS
    return False


def bulk_spectral_radius(c) -> float:
    """Spectral radius of the linear-response map of the stiffest bulk mode (curvature
    lambda_max): c <- c - eta k_s chi ((1 - beta^2) lambda c + beta^2 M), M <- beta M +
    (1 - beta) lambda c (Nesterov; EMA: the buffer alone)."""
    from ..landscapes.spectra import bulk_quantiles

    _, step, _, chi, _ = _system(c)
    count = c.m * c.n - c.escape_rank
    lam = c.bulk_scale * float(np.max(bulk_quantiles(c.bulk, count, c.bulk_ratio, c.bulk_tail)))
    beta = float(c.momentum)
    cur, buf = ((1 - beta) * (1 + beta), beta * beta) if c.nesterov else (1 - beta, beta)
    A = np.array([[1 - step * chi * cur * lam, -step * chi * buf], [(1 - beta) * lam, beta]])
    return float(np.max(np.abs(np.linalg.eigvals(A))))


def _growth_phase(c) -> bool:
    p = _params(c)
    return p["z"] * p["s"] <= p["a_c"]


MIN_EFOLDS = 3.0  # ln(R/(z s)): e-foldings of the growing mode between the noise and R


def _exponential_escape(c) -> bool:
    p = _params(c)
    return math.log(c.radius / (p["z"] * p["s"])) >= MIN_EFOLDS


ASSUMPTIONS = (
    Assumption(MUON, "the optimizer is Muon (polar or Newton-Schulz)",
               lambda c: c.optimizer == MUON),
    Assumption("spectral", "the spectral saddle", lambda c: c.landscape == SPECTRAL),
    Assumption("unstable", "gamma > 0 (gamma = 0 is the diffusive law)", lambda c: c.gamma > 0),
    Assumption("no_quartic", "quartic = 0 (the gradient along E is exactly -gamma a)",
               lambda c: c.quartic == 0),
    Assumption("rank_one", "escape_rank = 1", lambda c: c.escape_rank == 1),
    Assumption("projection", "escape criterion projection (|a| >= R)",
               lambda c: c.escape == "projection"),
    Assumption("noise_start", "init = saddle with a_0 = init_escape = 0 (a > 0: muon.py)",
               lambda c: c.init == "saddle" and not c.init_escape),
    Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
    Assumption("momentum", "0 < beta < 1 (the filter and its noise gain)",
               lambda c: 0 < c.momentum < 1),
    Assumption("gaussian_bulk_noise", "the momentum's noise is a rotation-invariant Gaussian "
               "matrix: isotropic or opnorm noise, or student_t (df > 2) averaged over >= 10 "
               "effective draws by the momentum; not kronecker (row variances) nor lowrank",
               _noise_covered),
    Assumption("stable_bulk", "the stiffest bulk mode is stable under the linear-response map "
               "(spectral radius < 1 at lambda_max; past it the bulk oscillates and crowds E "
               "out of the orthogonalized momentum)", lambda c: bulk_spectral_radius(c) < 1),
    Assumption("growth_phase", "z s <= a_c: the noise spread starts below the crossover "
               "(else the start is diffusive)", _growth_phase),
    Assumption("exponential_escape", "ln(R/(z s)) >= 3: the escape takes >= 3 e-foldings past "
               "the noise's spread (closer, the noise still carries a across R and the law "
               "runs long: 1.2-1.3x at R/(z s) = 19-26, 1.5-3x at 3-8)", _exponential_escape),
    Assumption("budget", "max_steps >= 2 x the estimate (the median is observed)",
               lambda c: c.max_steps >= 2 * noise_start_median(c)),
)

tau = sp.Symbol(r"\operatorname{med}\,\tau", positive=True)
a_c, s_, z_, g_, T_c = sp.symbols("a_c s z g T_c", positive=True)

MUON_NOISE_START = Result(
    name="muon_noise_start_estimate",
    title="Muon median escape time from the saddle (a_0 = 0): noise-driven linear response, "
    "then the spiked (ballistic) phase",
    quantity="escape_time",
    kind="estimate",
    optimizer=MUON,
    lhs=r"\operatorname{med}\,\tau",
    expr=sp.log(a_c / (z_ * s_)) / sp.log(g_) + T_c,
    assumptions=ASSUMPTIONS,
    params=_params,
    page="muon_noise_start",
    d_dependence="chi ~ 1/(sigma_f sqrt(max(m, n))), Var xi = q/max(m, n), a_c ~ sigma_f "
    "(mn)^{1/4}/gamma: isotropic noise b = 0.14 (matched_spectral), -0.14 to -0.09 "
    "(matched_rms); opnorm 0.05, -0.22",
    summary="g: growing eigenvalue of the linear (a, M) map with the susceptibility chi; s: "
    "spread of Z (a_t ~ g^t Z), z = 0.6745 its median factor; a_c: the level where the "
    "filtered signal reaches 0.3 x the BBP threshold; T_c: steps of the mean map "
    "(Monte Carlo response phi) from a_c to R",
)


# ---- the dimension exponent ------------------------------------------------------------------


def _exponent_params(protocol: str):
    from .diffusive import protocol_config

    def params(c) -> dict[str, float]:
        if c.optimizer != MUON:
            raise ValueError("not muon")
        return {"tau_1": noise_start_median(protocol_config(c, protocol, 1)),
                "tau_2": noise_start_median(protocol_config(c, protocol, 2))}

    return params


tau1, tau2 = sp.symbols("tau_1 tau_2", positive=True)


def _exponent(protocol: str) -> Result:
    return Result(
        name=f"muon_noise_start_exponent_{protocol}",
        title=f"Dimension exponent b of Muon's escape from a_0 = 0, tau ~ D^b, square m = n, "
        f"{protocol} learning rates",
        quantity="dimension_exponent",
        kind="estimate",
        optimizer=MUON,
        lhs="b",
        expr=sp.log(tau2 / tau1) / sp.log(4),
        assumptions=tuple(a for a in ASSUMPTIONS if a.name != "budget") + (
            Assumption("square", "m = n", lambda c: c.m == c.n),
        ),
        params=_exponent_params(protocol),
        page="muon_noise_start",
        d_dependence=f"b = d ln tau/d ln D between D = mn and 4D, the lr set by {protocol}",
        summary="tau_1, tau_2: the estimate at (m, n) and (2m, 2n)",
    )


NOISE_START_EXPONENTS = tuple(_exponent(p) for p in ("fixed", "matched_rms",
                                                     "matched_spectral"))

