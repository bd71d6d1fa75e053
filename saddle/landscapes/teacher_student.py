r"""The teacher–student plateau: a two-layer soft committee machine at its symmetric point.

The student maps x in R^n to m outputs through h = ``width`` hidden units,

.. math::

    y(x) = W_2\, g(W_1 x / \sqrt n), \qquad W_1 \in \mathbb{R}^{h \times n},\
    W_2 \in \mathbb{R}^{m \times h}, \qquad g(z) = \operatorname{erf}(z / \sqrt2),

and the teacher is the same machine with M = ``teacher_width`` units: input weights B_1
(M, n) with orthonormal rows times sqrt(n) (so B_1 B_1^T / n = I_M), drawn once per
landscape_seed, and output weights B_2 = ``teacher_scale`` * ones (m, M). The loss is
1/2 E ||y(x) - y*(x)||^2 over x ~ N(0, I_n) (``samples = 0``), in Saad & Solla's closed
form through the order parameters Q = W_1 W_1^T / n, R = W_1 B_1^T / n, T = B_1 B_1^T / n:

.. math::

    E[g(a) g(b)] = \tfrac{2}{\pi} \arcsin \frac{C_{ab}}{\sqrt{(1 + C_{aa})(1 + C_{bb})}},

or, with ``samples = N > 0``, the empirical loss 1/(2N) sum_i ||y(x_i) - y*(x_i)||^2 on N
inputs drawn once per landscape seed (targets from the teacher). The parameter is the pytree
``{"W1": (h, n), "W2": (m, h)}``, D = h (n + m).

The saddle W* is the symmetric plateau: every student unit equal (w_k = w, the columns of
W_2 equal). On that subspace the loss is that of one unit with output weights u = h v, and
the plateau is its minimum there, a critical point of the full loss (symmetric
criticality: the loss is invariant under permutations of the student units). For the
population loss, the teacher's symmetries (permuting its units, rotating the inputs
orthogonal to its span) put w = r sum_p B_1[p] and u = c 1_m, and the minimum is
one-dimensional: with beta = r / sqrt(2 (1 + M r^2)) and alpha = M r^2 / (1 + M r^2),
u = M s B / A with B = (2/pi) arcsin(beta), A = (2/pi) arcsin(alpha), at the r > 0 that
maximizes B^2 / A (a root of its derivative, to machine precision); the plateau loss is
m s^2 (M/3 - M^2 B^2 / A) / 2. For the empirical loss, Newton's method on the one-unit
problem (n + m parameters) starts there. The value is f = loss - loss(W*), so f(W*) = 0
and the solution (the student reproducing the teacher, loss 0) lies at f = -loss(W*).

Escape directions. The unit permutations split the parameter space into the symmetric
subspace (where W* is a minimum) and the ``standard`` part: displacements u (x) z with
sum_k u_k = 0 (u in R^h, a unit of displacement per student unit) and z = (z_1, z_2) in
R^n x R^m. There the Hessian is H_std (x) I_{h-1}, with H_std the (n + m) x (n + m)
Hessian along u_0 = (e_0 - e_1)/sqrt(2), computed once per landscape draw with JAX
(float64). Every negative Hessian eigenvalue of the full loss is an eigenvalue of H_std,
with multiplicity h - 1 (the specialization of the units to the teacher's). The escape
directions are E_i = u_j (x) z_l, i = l (h - 1) + j, for the negative eigenvectors z_l of
H_std (most negative first) and the Helmert basis u_j of {sum u = 0}: W_1 part u_j z_1^T,
W_2 part z_2 u_j^T. The loss criterion is the natural one here (leaving the plateau):
the projection criterion measures one of (h - 1) x (negative eigenvalues) directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

from ..errors import ConfigError
from ..fields import choice_field, int_field
from ..reduce import tree_sum
from ._data import SAMPLES, draw_inputs_once, pick_rows
from ._spec import LandscapeSpec, register
from .base import AbstractLandscape
from .linear_network import LinearNetworkSpec

__all__ = ["TeacherStudentSaddle", "TeacherStudentSpec", "population_loss", "empirical_loss",
           "symmetric_plateau", "teacher_weights", "helmert", "population_level",
           "plateau_arrays", "plateau_curvature"]

_HI = jax.lax.Precision.HIGHEST
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_TWO_OVER_PI = 2.0 / math.pi


def activation(z):
    """g(z) = erf(z / sqrt 2) (Saad & Solla's activation)."""
    return erf(z * _INV_SQRT2)


def _kernel(C, da, db):
    """E[g(a) g(b)] for jointly Gaussian pre-activations: (2/pi) arcsin(C / sqrt((1+da)(1+db)))."""
    return _TWO_OVER_PI * jnp.arcsin(C / jnp.sqrt((1.0 + da)[:, None] * (1.0 + db)[None, :]))


def population_loss(W1, W2, B1, B2):
    """1/2 E ||W2 g(W1 x/sqrt n) - B2 g(B1 x/sqrt n)||^2 over x ~ N(0, I_n), closed form."""
    n = W1.shape[-1]
    Q = jnp.matmul(W1, W1.T, precision=_HI) / n
    R = jnp.matmul(W1, B1.T, precision=_HI) / n
    T = jnp.matmul(B1, B1.T, precision=_HI) / n
    q, t = jnp.diagonal(Q), jnp.diagonal(T)
    student = tree_sum(jnp.matmul(W2, _kernel(Q, q, q), precision=_HI) * W2)
    cross = tree_sum(jnp.matmul(W2, _kernel(R, q, t), precision=_HI) * B2)
    teacher = tree_sum(jnp.matmul(B2, _kernel(T, t, t), precision=_HI) * B2)
    return 0.5 * student - cross + 0.5 * teacher


def empirical_loss(W1, W2, B1, B2, X):
    """1/(2N) sum_i ||W2 g(W1 x_i/sqrt n) - B2 g(B1 x_i/sqrt n)||^2 over the rows x_i of X."""
    scale = 1.0 / math.sqrt(X.shape[-1])
    out = jnp.matmul(activation(jnp.matmul(X, W1.T, precision=_HI) * scale), W2.T,
                     precision=_HI)
    target = jnp.matmul(activation(jnp.matmul(X, B1.T, precision=_HI) * scale), B2.T,
                        precision=_HI)
    r = out - target
    return 0.5 * tree_sum(r * r) / X.shape[0]


def helmert(h: int, count: int) -> np.ndarray:
    """The first ``count`` columns (h, count) of the Helmert basis of {u in R^h: sum u = 0}:
    u_j = (e_0 + ... + e_j - (j + 1) e_{j+1}) / sqrt((j + 1)(j + 2)), orthonormal."""
    U = np.zeros((h, count))
    for j in range(count):
        U[: j + 1, j] = 1.0
        U[j + 1, j] = -(j + 1.0)
        U[:, j] /= math.sqrt((j + 1.0) * (j + 2.0))
    return U


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class TeacherStudentSaddle(AbstractLandscape):
    """The symmetric plateau of a soft committee machine learning a teacher.

    Attributes:
        B1: (M, n) teacher input weights (B1 B1^T / n = I). B2: (m, M) its output weights.
        W1s, W2s: the plateau point W* (h, n) and (m, h).
        level: the loss at W* (f = loss - level).
        Z: (n + m, k) the negative-curvature eigenvectors z_l of H_std, most negative first.
        X: (N, n) the data set's inputs, or None (population loss, fresh minibatch inputs).
        escape_rank: r <= k (h - 1) (static).
    """

    B1: jax.Array
    B2: jax.Array
    W1s: jax.Array
    W2s: jax.Array
    level: jax.Array
    Z: jax.Array
    X: jax.Array | None
    escape_rank: int = field(metadata=dict(static=True))

    def __post_init__(self):
        h = self.W1s.shape[0]
        if not 1 <= self.escape_rank <= self.Z.shape[-1] * (h - 1):
            raise ValueError(f"escape_rank: got {self.escape_rank}; allowed: 1.."
                             f"{self.Z.shape[-1] * (h - 1)} (negative eigenvalues x (width - 1))")

    @property
    def saddle_point(self):
        return {"W1": self.W1s, "W2": self.W2s}

    def loss(self, W):
        """The unshifted loss (population, or empirical on the data set)."""
        if self.X is None:
            return population_loss(W["W1"], W["W2"], self.B1, self.B2)
        return empirical_loss(W["W1"], W["W2"], self.B1, self.B2, self.X)

    def value_and_grad_with_coordinates(self, W):
        value, grad = jax.value_and_grad(self.loss)(W)
        X = jax.tree.map(jnp.subtract, W, self.saddle_point)
        return value - self.level, grad, self.direction_coordinates(X)

    def draw_inputs(self, gen, batch: int) -> jax.Array:
        """``batch`` inputs as rows: fresh x ~ N(0, I_n), or rows picked from the data set."""
        if self.X is None:
            return gen.normal((batch, self.B1.shape[1]), self.B1.dtype)
        return pick_rows(gen, self.X, batch)

    def minibatch_gradient(self, W, X):
        """The gradient of the empirical loss on the rows of X (B, n), teacher targets:
        unbiased for the population loss (fresh inputs) or the data set's (picked rows)."""
        return jax.grad(lambda w: empirical_loss(w["W1"], w["W2"], self.B1, self.B2, X))(W)

    def alignment(self, W) -> jax.Array:
        """The specialization of the best student unit to teacher unit 0, rescaled so that the
        plateau is 0 and perfect specialization 1: (max_i rho_i - rho*) / (1 - rho*) with
        rho_i = R_i0 / sqrt(Q_ii T_00) = cos(w_i, B_1[0]) and rho* = the same at W* (on the
        population plateau every unit has rho* = 1/sqrt(M))."""
        b = self.B1[0]
        rho = self._cosines(W["W1"], b)
        rho_star = self._cosines(self.W1s[:1], b)[0]
        return (jnp.max(rho) - rho_star) / (1.0 - rho_star)

    @staticmethod
    def _cosines(W1, b):
        dots = jnp.matmul(W1, b, precision=_HI)
        norms = jnp.sqrt(tree_sum(W1 * W1, axis=1) * tree_sum(b * b))
        return dots / jnp.maximum(norms, jnp.finfo(W1.dtype).tiny)

    def _pairs(self):
        h = self.W1s.shape[0]
        J = min(h - 1, self.escape_rank)
        L = -(-self.escape_rank // (h - 1))
        return h, J, L

    def direction_coordinates(self, X):
        """<E_i, X> = u_j^T (X1 z_l1 + X2^T z_l2), i = l (h - 1) + j."""
        h, J, L = self._pairs()
        n = self.B1.shape[1]
        Zl = self.Z[:, :L]
        P = (jnp.matmul(X["W1"], Zl[:n], precision=_HI)
             + jnp.matmul(X["W2"].T, Zl[n:], precision=_HI))  # (h, L)
        U = jnp.asarray(helmert(h, J), P.dtype)
        C = jnp.matmul(U.T, P, precision=_HI)  # (J, L); J < h - 1 only when L = 1
        return C.T.reshape(-1)[: self.escape_rank]

    def escape_direction(self, i: int):
        h = self.W1s.shape[0]
        l, j = divmod(i, h - 1)
        n = self.B1.shape[1]
        u = jnp.asarray(helmert(h, j + 1)[:, j], self.Z.dtype)
        z = self.Z[:, l]
        return {"W1": jnp.outer(u, z[:n]), "W2": jnp.outer(z[n:], u)}


# --------------------------------------------------------------------------------------
# The plateau point and its escape directions, once per landscape draw (float64).

_STREAM_TEACHER, _STREAM_DATA = 21, 22
_N_MAX = 2048  # n + m: H_std is dense (n + m)^2, built from n + m Hessian-vector products
_NEGATIVE = 1e-9  # an eigenvalue of H_std below -_NEGATIVE * max |eigenvalue| is negative


def teacher_weights(config) -> tuple[np.ndarray, np.ndarray]:
    """B1 (M, n): Haar-orthonormal rows times sqrt(n), from landscape_seed alone; B2 (m, M):
    teacher_scale * ones."""
    rng = np.random.default_rng([int(config.landscape_seed), _STREAM_TEACHER])
    M, n = config.teacher_width, config.n
    Q, R = np.linalg.qr(rng.standard_normal((n, M)))
    B1 = (Q * np.sign(np.diag(R))).T * math.sqrt(n)
    return B1, np.full((config.m, M), float(config.teacher_scale))


def _plateau_overlap(M: int) -> tuple[float, float, float]:
    """(r, B, A) at the population plateau: r > 0 maximizes B(r)^2 / A(r), the root of
    2 B' A - A' B (machine precision: brentq on the closed-form derivative)."""
    from scipy.optimize import brentq

    def parts(r):
        beta, alpha = r / math.sqrt(2 * (1 + M * r * r)), M * r * r / (1 + M * r * r)
        B, A = _TWO_OVER_PI * math.asin(beta), _TWO_OVER_PI * math.asin(alpha)
        dB = _TWO_OVER_PI * 2 / (2 * (1 + M * r * r)) ** 1.5 / math.sqrt(1 - beta * beta)
        dA = _TWO_OVER_PI * 2 * M * r / (1 + M * r * r) ** 2 / math.sqrt(1 - alpha * alpha)
        return B, A, dB, dA

    def slope(r):
        B, A, dB, dA = parts(r)
        return (2 * dB * A - dA * B) / (B * A)  # d log(B^2 / A) / dr

    r = brentq(slope, 1e-3 / math.sqrt(M), 10.0, xtol=1e-16, rtol=1e-15)
    B, A, _, _ = parts(r)
    return r, B, A


def population_level(values) -> float:
    """The population loss at the plateau: m s^2 (M/3 - M^2 B^2 / A) / 2."""
    M, s = values["teacher_width"], values["teacher_scale"]
    _, B, A = _plateau_overlap(M)
    return 0.5 * values["m"] * s * s * (M / 3.0 - M * M * B * B / A)


def _dense_hessian(fun, dim: int) -> np.ndarray:
    """The Hessian of fun: R^dim -> R at 0, from dim Hessian-vector products in chunks."""
    zero = jnp.zeros(dim, jnp.float64)
    hvp = jax.jit(lambda v: jax.jvp(jax.grad(fun), (zero,), (v,))[1])
    H = np.asarray(jax.lax.map(hvp, jnp.eye(dim, dtype=jnp.float64), batch_size=64))
    return 0.5 * (H + H.T)


def _one_unit(loss, n: int):
    """The loss on the symmetric subspace as a function of p = (w, u) in R^(n + m): every
    unit's input weights w, total output weights u (= h v); it equals the width-1 loss."""
    return lambda p: loss(p[None, :n], p[n:, None])


def _newton(fun, p0: np.ndarray, steps: int = 50) -> np.ndarray:
    """Newton's method for a minimum of fun from p0 (backtracking, a shift if not convex)."""
    value, grad, hess = jax.jit(fun), jax.jit(jax.grad(fun)), jax.jit(jax.hessian(fun))
    p = jnp.asarray(p0, jnp.float64)
    for _ in range(steps):
        g = np.asarray(grad(p))
        if np.linalg.norm(g) < 1e-14:
            break
        H = np.asarray(hess(p))
        lo = np.linalg.eigvalsh(H)[0]
        step = jnp.asarray(np.linalg.solve(H + max(0.0, 1e-8 - lo) * np.eye(p.size), g))
        t, f0 = 1.0, float(value(p))
        while t > 1e-6 and float(value(p - t * step)) > f0:
            t /= 2
        p = p - t * step
    return np.asarray(p)


def symmetric_plateau(config, B1, B2, X) -> tuple[np.ndarray, np.ndarray, float]:
    """The plateau point (W1*, W2*) and its loss: the population closed form, then (for a
    data set) Newton's method on the empirical loss of the one-unit problem."""
    h, m, n, M = config.width, config.m, config.n, config.teacher_width
    r, B, A = _plateau_overlap(M)
    w = r * B1.sum(axis=0)
    u = np.full(m, M * float(config.teacher_scale) * B / A)
    B1j, B2j = jnp.asarray(B1), jnp.asarray(B2)
    if X is None:
        loss = lambda W1, W2: population_loss(W1, W2, B1j, B2j)  # noqa: E731
    else:
        Xj = jnp.asarray(X)
        loss = lambda W1, W2: empirical_loss(W1, W2, B1j, B2j, Xj)  # noqa: E731
        p = _newton(_one_unit(loss, n), np.concatenate([w, u]))
        w, u = p[:n], p[n:]
    W1, W2 = np.tile(w, (h, 1)), np.tile(u[:, None] / h, (1, h))
    return W1, W2, float(loss(jnp.asarray(W1), jnp.asarray(W2)))


def std_hessian(config, arrays) -> np.ndarray:
    """H_std: the Hessian of the loss along u_0 (x) z, u_0 = (e_0 - e_1)/sqrt 2, at W*."""
    n, h = config.n, config.width
    u0 = jnp.asarray(helmert(h, 1)[:, 0])
    L = TeacherStudentSaddle(*(jnp.asarray(arrays[k]) if arrays[k] is not None else None
                               for k in ("B1", "B2", "W1s", "W2s", "level", "Z", "X")),
                             escape_rank=1)
    W1s, W2s = L.W1s, L.W2s
    return _dense_hessian(lambda z: L.loss({"W1": W1s + jnp.outer(u0, z[:n]),
                                            "W2": W2s + jnp.outer(z[n:], u0)}), n + config.m)


def plateau_arrays(config) -> dict[str, np.ndarray | None]:
    """The shared arrays of one landscape draw: the teacher, the data set, the plateau point
    and level, and the negative eigenvectors Z of H_std (with their eigenvalues)."""
    with jax.enable_x64(True):
        B1, B2 = teacher_weights(config)
        X = None
        if config.samples:
            rng = np.random.default_rng([int(config.landscape_seed), _STREAM_DATA])
            X = draw_inputs_once(rng, config.samples, config.n)
        W1, W2, level = symmetric_plateau(config, B1, B2, X)
        arrays = dict(B1=B1, B2=B2, W1s=W1, W2s=W2, level=np.asarray(level),
                      Z=np.zeros((config.n + config.m, 1)), X=X)
        evals, evecs = np.linalg.eigh(std_hessian(config, arrays))
    neg = evals < -_NEGATIVE * np.abs(evals).max()
    if not neg.any():
        raise ConfigError("teacher_width", config.teacher_width,
                          "a teacher whose plateau is a saddle (this one's Hessian has no "
                          f"negative eigenvalue; lowest {evals[0]:.3g})")
    count = int(neg.sum()) * (config.width - 1)
    if config.escape_rank > count:
        raise ConfigError("escape_rank", config.escape_rank,
                          f"an integer in [1, {count}] (negative eigenvalues x (width - 1))")
    arrays.update(Z=evecs[:, neg], curvatures=evals[neg], spectrum=evals)
    return arrays


def plateau_curvature(config) -> dict:
    """The plateau's curvature facts from H_std (whose eigenvalues are the full Hessian's
    off the symmetric subspace, each h - 1 times): ``gamma`` = -(lowest eigenvalue), its
    ``multiplicity`` in the full Hessian ((h - 1) x the eigenvalues of H_std within 1e-6
    relative of the lowest), ``negative`` (the number of negative full-Hessian directions,
    (h - 1) x H_std's negative eigenvalues) and ``bulk_scale``: the mean of H_std's positive
    eigenvalues (above _NEGATIVE x the largest |eigenvalue|), or 0.0 when there are none.
    On the population plateau there are none: along u (x) z the student's output does not
    change to first order (the units are equal), so H_std is the residual's term alone, and
    every eigenvalue but the escape ones is 0 to rounding (measured: |lambda| < 1e-16)."""
    evals = plateau_arrays(config)["spectrum"]
    lo = float(evals[0])
    tol = _NEGATIVE * np.abs(evals).max()
    positive = evals[evals > tol]
    h1 = config.width - 1
    return dict(gamma=-lo, multiplicity=h1 * int(np.sum(evals <= lo * (1 - 1e-6))),
                negative=h1 * int(np.sum(evals < -tol)),
                bulk_scale=float(positive.mean()) if positive.size else 0.0)


# --------------------------------------------------------------------------------------
# The family's spec.

_LS = "landscape"
_SHARED = {f.name: f for f in LinearNetworkSpec.fields}  # one FieldSpec per shared name
WIDTH, TEACHER_SCALE = _SHARED["width"], _SHARED["teacher_scale"]
TEACHER_WIDTH = int_field("teacher_width", 2, "teacher_student: teacher hidden units M, in "
                          "[2, width] (M = 1 has no plateau)", _LS, lo=2)
ACTIVATION = choice_field("activation", "erf", ("erf",), "teacher_student: hidden activation "
                          "g(z) = erf(z/sqrt 2) (closed-form population loss)", _LS)


# The fraction of the plateau-to-solution loss gap whose descent counts as the escape.
LOSS_DROP_FRACTION = 0.5


@register
class TeacherStudentSpec(LandscapeSpec):
    name = "teacher_student"
    summary = "two-layer erf committee machine on a teacher, at its symmetric plateau"
    fields = (WIDTH, TEACHER_WIDTH, ACTIVATION, TEACHER_SCALE, SAMPLES)
    static = ("activation", "samples")
    minibatch = True  # TeacherStudentSaddle.minibatch_gradient
    alignment = True  # TeacherStudentSaddle.alignment
    # Core defaults while this family is chosen (saddle.config.core_defaults): start at the
    # plateau point plus a small random perturbation (exactly at it nothing moves without
    # noise), and count an escape by the loss; loss_drop None is derived in normalize.
    defaults = {"init": "random", "escape": "loss", "loss_drop": None}

    def normalize(self, values):
        """A loss_drop not given is LOSS_DROP_FRACTION of the plateau's loss above the
        solution: the run has left the plateau."""
        if values["loss_drop"] is None:
            values["loss_drop"] = LOSS_DROP_FRACTION * population_level(values)

    def static_key(self, config) -> tuple:
        return (("shape", (config.m, config.n, config.width, config.teacher_width)),
                ("activation", config.activation), ("samples", config.samples))

    def shared_arrays(self, config):
        arrays = plateau_arrays(config)
        arrays.pop("curvatures")
        arrays.pop("spectrum")
        return arrays

    def build(self, static, arrays, s, escape_rank):
        return TeacherStudentSaddle(B1=arrays["B1"], B2=arrays["B2"], W1s=arrays["W1s"],
                                    W2s=arrays["W2s"], level=arrays["level"], Z=arrays["Z"],
                                    X=arrays["X"], escape_rank=escape_rank)

    def dimension(self, config) -> int:
        return config.width * (config.m + config.n)

    def param_shapes(self, config) -> tuple[tuple[int, int], ...]:
        return ((config.width, config.n), (config.m, config.width))

    def loss_depth(self, values) -> float:
        """The plateau's population loss (the solution has loss 0); with a data set, the
        empirical plateau differs from it by O(1/sqrt(samples))."""
        return population_level(values)

    def escape_loss_scale(self, config) -> float:
        """m s^2 M / 6: the loss of the zero student, the teacher's whole output variance."""
        return config.m * config.teacher_scale**2 * config.teacher_width / 6.0

    def check(self, values):
        if values["teacher_width"] > values["width"]:
            raise ConfigError("teacher_width", values["teacher_width"],
                              f"an integer in [2, width] = [2, {values['width']}]")
        if values["n"] + values["m"] > _N_MAX:
            raise ConfigError("n", values["n"], f"n + m <= {_N_MAX} (the plateau's escape "
                              "directions come from a dense (n + m)^2 Hessian)")
        if values["escape"] == "loss" and not values["loss_drop"] < self.loss_depth(values):
            raise ConfigError("loss_drop", values["loss_drop"],
                              f"a number in (0, {self.loss_depth(values):.6g}): the plateau's "
                              "loss above the solution")
