"""Optimizers against independent references: optax, SVD, NumPy transcriptions of the
reference pseudo-code, and the composed Newton-Schulz polynomial."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from saddle.optimizers import (
    adamw,
    mano,
    muon,
    newton_schulz,
    newton_schulz_range,
    normalized_gd,
    polar_factor,
    sgd,
    sign_descent,
)

DTYPES = [jnp.float32, jnp.float64]


def grad_stream(shape, steps, dtype, seed=0):
    """A random gradient stream with a drifting mean (so momentum matters)."""
    rng = np.random.default_rng(seed)
    drift = rng.standard_normal(shape)
    return [jnp.asarray(drift + rng.standard_normal(shape), dtype) for _ in range(steps)]


def run(opt, W0, grads):
    """The trajectory of ``opt`` from W0 under a gradient stream, as one jitted scan."""

    def step(carry, g):
        W, state = carry
        u, state = opt.update(g, state, W)
        return (W + u, state), W + u

    _, traj = jax.jit(lambda W, gs: jax.lax.scan(step, (W, opt.init(W)), gs))(
        W0, jnp.stack(grads)
    )
    return list(traj)


def assert_close_traj(a, b, dtype, rtol=None):
    tol = rtol or (2e-5 if dtype == jnp.float32 else 1e-12)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def random_orthogonal(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


# --- AdamW -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "hp",
    [
        dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0),
        dict(learning_rate=3e-2, b1=0.8, b2=0.99, eps=1e-6, weight_decay=1e-2),
        dict(learning_rate=1e-2, b1=0.0, b2=0.5, eps=1e-3, weight_decay=0.1),
    ],
)
def test_adamw_equals_optax_over_100_steps(dtype, hp):
    W0 = jnp.asarray(np.random.default_rng(1).standard_normal((7, 5)), dtype)
    grads = grad_stream((7, 5), 100, dtype)
    ours = run(adamw(**hp), W0, grads)
    ref = run(optax.adamw(**hp), W0, grads)
    assert_close_traj(ours, ref, dtype)
    assert ours[-1].dtype == dtype


# --- Muon ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["ema", "sum"])
@pytest.mark.parametrize("shape", [(16, 16), (24, 8), (8, 24)])
def test_muon_matches_optax_without_nesterov(form, shape):
    """Where the conventions coincide, the trajectories agree step by step.

    optax.contrib.muon keeps a bias-corrected EMA; without Nesterov its orthogonalizer input
    is M / (1 - beta^t), a positive multiple of our M (EMA) or of our summed M, and
    Newton-Schulz is scale-invariant up to eps. optax scales by sqrt(max(1, fan_out/fan_in))
    in (in, out) layout, so it sees our (out, in) = (m, n) matrix transposed: we feed it W^T.
    The only residual difference is eps against a differently scaled input.
    """
    m, n = shape
    dtype = jnp.float64
    W0 = jnp.asarray(np.random.default_rng(2).standard_normal(shape) * 0.1, dtype)
    grads = grad_stream(shape, 60, dtype, seed=3)
    ours = run(muon(0.02, 0.95, nesterov=False, eps=1e-8, momentum_form=form), W0, grads)
    ref = run(optax.contrib.muon(0.02, beta=0.95, nesterov=False, eps=1e-8), W0.T,
              [g.T for g in grads])
    assert_close_traj(ours, [r.T for r in ref], dtype, rtol=1e-9)


def test_muon_nesterov_differs_from_optax_early_and_converges():
    """With Nesterov, optax mixes bias-corrected terms, beta M/(1-beta^(t+1)) +
    (1-beta) g/(1-beta^t), while Keller's U = beta M + (1-beta) g is uncorrected. The
    relative weight of g differs by a factor that tends to 1 as beta^t -> 0, so single-step
    updates differ early and agree late."""
    dtype = jnp.float64
    shape = (12, 12)
    W0 = jnp.zeros(shape, dtype)
    grads = grad_stream(shape, 400, dtype, seed=4)

    def updates(opt, grads, transpose=False):
        W = W0.T if transpose else W0
        gs = jnp.stack([g.T if transpose else g for g in grads])

        def step(state, g):
            u, state = opt.update(g, state, W)
            return state, u

        _, us = jax.jit(lambda gs: jax.lax.scan(step, opt.init(W), gs))(gs)
        return [u.T if transpose else u for u in us]

    ours = updates(muon(0.02, 0.95, nesterov=True, eps=1e-8), grads)
    ref = updates(optax.contrib.muon(0.02, beta=0.95, nesterov=True, eps=1e-8), grads, True)
    diff = [float(jnp.abs(a - b).max()) for a, b in zip(ours, ref, strict=True)]
    assert diff[1] > 1e-4  # early: visibly different
    assert diff[-1] < 1e-9  # after 400 steps (0.95^400 ~ 1e-9): the same


@pytest.mark.parametrize("orth", ["newton_schulz", "polar"])
@pytest.mark.parametrize("shape", [(10, 10), (14, 6), (6, 14)])
def test_orthogonalizer_is_orthogonally_equivariant(orth, shape):
    m, n = shape
    G = np.random.default_rng(5).standard_normal(shape)
    A, B = random_orthogonal(m, 6), random_orthogonal(n, 7)
    f = polar_factor if orth == "polar" else newton_schulz
    lhs = f(jnp.asarray(A @ G @ B))
    rhs = A @ np.asarray(f(jnp.asarray(G))) @ B
    np.testing.assert_allclose(lhs, rhs, atol=1e-10)


@pytest.mark.parametrize("shape", [(9, 9), (20, 5), (5, 20), (2, 7), (7, 2)])
def test_polar_factor_has_unit_singular_values_and_matches_svd(shape):
    X = jnp.asarray(np.random.default_rng(8).standard_normal(shape))
    O = polar_factor(X)
    np.testing.assert_allclose(np.linalg.svd(np.asarray(O), compute_uv=False), 1.0, atol=1e-10)
    # polar(X) = X (X^T X)^(-1/2): check against an eigen-decomposition reference.
    Xn = np.asarray(X)
    if shape[0] >= shape[1]:
        w, V = np.linalg.eigh(Xn.T @ Xn)
        ref = Xn @ (V / np.sqrt(w)) @ V.T
    else:
        w, V = np.linalg.eigh(Xn @ Xn.T)
        ref = (V / np.sqrt(w)) @ V.T @ Xn
    np.testing.assert_allclose(O, ref, atol=1e-10)
    assert np.all(np.asarray(polar_factor(jnp.zeros(shape))) == 0)


@pytest.mark.parametrize("x_lo", [1e-2, 1e-3, 0.1])
@pytest.mark.parametrize("shape", [(30, 30), (40, 25), (25, 40)])
def test_newton_schulz_singular_values_lie_in_the_composed_range(x_lo, shape):
    m, n = shape
    r = min(m, n)
    rng = np.random.default_rng(9)
    U = np.linalg.qr(rng.standard_normal((m, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    # Singular values chosen so that, after division by the Frobenius norm, they span
    # [x_lo, 1] relative to... the largest must be <= 1 after normalization by ||X||_F.
    s = np.geomspace(x_lo, 1.0, r)
    s = s / np.linalg.norm(s)  # ||X||_F = 1: the normalized singular values are s
    X = (U * s) @ V.T
    out = np.linalg.svd(np.asarray(newton_schulz(jnp.asarray(X), eps=0.0)), compute_uv=False)
    lo, hi = newton_schulz_range(s.min(), 5, x_hi=s.max())
    assert lo - 1e-9 <= out.min() and out.max() <= hi + 1e-9
    # And each output singular value is phi^5 of its input (exactly, in float64).
    phi5 = s.copy()
    for _ in range(5):
        phi5 = 3.4445 * phi5 - 4.7750 * phi5**3 + 2.0315 * phi5**5
    np.testing.assert_allclose(np.sort(out), np.sort(phi5), atol=1e-10)


def test_newton_schulz_range_matches_the_design_numbers():
    lo, hi = newton_schulz_range(1e-2)
    assert abs(lo - 0.68) < 0.005 and abs(hi - 1.13) < 0.01
    lo3, hi3 = newton_schulz_range(1e-3)
    assert abs(lo3 - 0.47) < 0.005 and abs(hi3 - 1.20) < 0.01
    # Inputs below about 1.5e-3 never reach 0.68; a dense grid agrees with the exact image.
    assert newton_schulz_range(1.4e-3, x_hi=1.4e-3)[1] < 0.68 < newton_schulz_range(1.6e-3)[0]
    grid = np.linspace(1e-2, 1, 200_001)
    y = grid
    for _ in range(5):
        y = 3.4445 * y - 4.7750 * y**3 + 2.0315 * y**5
    assert lo <= y.min() < lo + 1e-6 and hi - 1e-6 < y.max() <= hi


# --- Mano ------------------------------------------------------------------------------


def mano_reference(theta, grads, lr, mu, variant, nesterov, eps, wd):
    """The reference pseudo-code, transcribed literally in NumPy (float64)."""
    theta = np.array(theta, dtype=np.float64)
    M = np.zeros_like(theta)
    out = []
    for t, g in enumerate(grads):
        g = np.asarray(g, np.float64)
        M = mu * M + g
        V = g + mu * M if nesterov else M
        k = t % 2
        n_k = theta.shape[k]
        if variant == "v1":
            th = theta / np.maximum(np.linalg.norm(theta, axis=k, keepdims=True), eps)
            v = V - th * np.sum(V * th, axis=k, keepdims=True)
            vh = v / np.maximum(np.linalg.norm(v, axis=k, keepdims=True), eps)
        else:
            v = V - theta * np.sum(V * theta, axis=k, keepdims=True)
            vh = v / (np.linalg.norm(v, axis=k, keepdims=True) + eps)
        theta = theta * (1 - lr * wd) - lr * 0.2 * math.sqrt(n_k) * vh
        out.append(theta.copy())
    return out


@pytest.mark.parametrize("variant", ["v1", "v2"])
@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (6, 6)])
def test_mano_matches_the_reference_transcription(variant, shape):
    rng = np.random.default_rng(10)
    W0 = rng.standard_normal(shape) * 0.3
    grads = [rng.standard_normal(shape) for _ in range(20)]
    nesterov = variant == "v2"
    ours = run(mano(0.01, 0.9, variant=variant, weight_decay=0.1), jnp.asarray(W0),
               [jnp.asarray(g) for g in grads])
    ref = mano_reference(W0, grads, 0.01, 0.9, variant, nesterov, 1e-8, 0.1)
    assert_close_traj(ours, ref, jnp.float64)


@pytest.mark.parametrize("shape", [(9, 7), (7, 9)])
def test_mano_v1_update_is_tangent_with_rms_exactly_0_2(shape):
    rng = np.random.default_rng(11)
    W = jnp.asarray(rng.standard_normal(shape))
    opt = mano(1.0, 0.9)
    state = opt.init(W)
    for t in range(4):
        g = jnp.asarray(rng.standard_normal(shape))
        u, state = opt.update(g, state, W)
        k = t % 2
        th = W / jnp.linalg.norm(W, axis=k, keepdims=True)
        # Tangent slice by slice: <u, theta_hat>_k = 0 for every slice along axis k.
        assert float(jnp.abs(jnp.sum(u * th, axis=k)).max()) < 1e-12
        # Unit slices scaled by 0.2 sqrt(n_k): RMS exactly 0.2 * lr.
        assert abs(float(jnp.sqrt(jnp.mean(u**2))) - 0.2) < 1e-12
        np.testing.assert_allclose(
            jnp.linalg.norm(u, axis=k), 0.2 * math.sqrt(shape[k]), rtol=1e-12
        )
        W = W + 1e-3 * u


def test_mano_edge_cases():
    # m x 1: every k = 1 step is null (1-element rows have no tangent space).
    W = jnp.asarray(np.random.default_rng(12).standard_normal((6, 1)))
    opt = mano(0.1, 0.0)
    s = opt.init(W)
    u0, s = opt.update(jnp.ones((6, 1)), s, W)
    u1, s = opt.update(jnp.ones((6, 1)), s, W)
    assert float(jnp.abs(u0).max()) > 0 and float(jnp.abs(u1).max()) == 0
    # A zero slice of theta gets plain normalized momentum (no projection).
    W = jnp.asarray([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]])  # column 0 and 1 nonzero; rows 0, 2 zero
    s = opt.init(W)
    s = s._replace(count=jnp.asarray(1, jnp.int32))  # axis 1: per-row slices
    g = jnp.asarray([[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]])
    u, _ = opt.update(g, s, W)
    np.testing.assert_allclose(u[0], -0.1 * 0.2 * math.sqrt(2) * np.array([0.6, 0.8]), atol=1e-12)
    # Zero init acts like normalized SGD-M; zero gradient gives zero update.
    for variant in ("v1", "v2"):
        o = mano(0.1, 0.9, variant=variant)
        u, _ = o.update(jnp.zeros((4, 3)), o.init(jnp.zeros((4, 3))), jnp.zeros((4, 3)))
        assert float(jnp.abs(u).max()) == 0 and not bool(jnp.isnan(u).any())


# --- Baselines -------------------------------------------------------------------------


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_equals_optax(momentum, nesterov):
    dtype = jnp.float64
    W0 = jnp.zeros((5, 4), dtype)
    grads = grad_stream((5, 4), 50, dtype, seed=13)
    ours = run(sgd(0.05, momentum, nesterov=nesterov), W0, grads)
    ref = run(optax.sgd(0.05, momentum=momentum or None, nesterov=nesterov), W0, grads)
    assert_close_traj(ours, ref, dtype)


def test_sign_descent_and_normalized_gd_against_numpy():
    rng = np.random.default_rng(14)
    grads = [rng.standard_normal((4, 3)) for _ in range(30)]
    W0 = rng.standard_normal((4, 3))
    # NumPy transcriptions
    M, W, ref_sign = np.zeros((4, 3)), W0.copy(), []
    for g in grads:
        M = 0.5 * M + g
        W = W * (1 - 0.01 * 0.1) - 0.01 * np.sign(M)
        ref_sign.append(W.copy())
    M, W, ref_ngd = np.zeros((4, 3)), W0.copy(), []
    for g in grads:
        M = 0.8 * M + g
        W = W - 0.03 * M / np.linalg.norm(M)
        ref_ngd.append(W.copy())
    jg = [jnp.asarray(g) for g in grads]
    assert_close_traj(run(sign_descent(0.01, 0.5, weight_decay=0.1), jnp.asarray(W0), jg),
                      ref_sign, jnp.float64)
    assert_close_traj(run(normalized_gd(0.03, 0.8), jnp.asarray(W0), jg), ref_ngd, jnp.float64)


# --- Edge cases, dtypes, jit and vmap --------------------------------------------------

# The optimizer test table: one row per registered optimizer (by its name), plus variants.
ALL = {
    "adamw": lambda: adamw(1e-3),
    "muon": lambda: muon(0.02),
    "muon_polar": lambda: muon(0.02, orthogonalizer="polar"),
    "muon_moonlight": lambda: muon(0.02, scaling="moonlight"),
    "mano": lambda: mano(1e-3),
    "mano_v2": lambda: mano(1e-3, variant="v2"),
    "sgd": lambda: sgd(0.1, 0.9),
    "sign_descent": lambda: sign_descent(1e-3, 0.9),
    "normalized_gd": lambda: normalized_gd(0.02, 0.9),
}


def test_every_registered_optimizer_has_a_row_in_the_table():
    from saddle.registry import OPTIMIZERS

    assert set(OPTIMIZERS.names()) <= set(ALL), set(OPTIMIZERS.names()) - set(ALL)


SHAPES = [(6, 6), (32, 8), (8, 32), (2, 9), (9, 2)]


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("shape", SHAPES)
def test_zero_gradient_gives_zero_update(name, shape):
    opt = ALL[name]()
    W = jnp.asarray(np.random.default_rng(15).standard_normal(shape), jnp.float32)
    s = opt.init(W)
    for _ in range(2):
        u, s = opt.update(jnp.zeros(shape, jnp.float32), s, W)
        assert not bool(jnp.isnan(u).any())
        assert float(jnp.abs(u).max()) == 0.0


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_and_dtypes_are_preserved(name, shape, dtype):
    opt = ALL[name]()
    W = jnp.asarray(np.random.default_rng(16).standard_normal(shape), dtype)
    s = opt.init(W)
    u, s = jax.jit(opt.update)(jnp.ones(shape, dtype), s, W)
    assert u.shape == shape and u.dtype == dtype
    for leaf in jax.tree.leaves(s):
        if leaf.ndim:
            assert leaf.dtype == dtype


@pytest.mark.parametrize("scaling, expect", [("keller", lambda m, n: math.sqrt(max(1, m / n))),
                                             ("moonlight", lambda m, n: 0.2 * math.sqrt(max(m, n))),
                                             ("none", lambda m, n: 1.0)])
@pytest.mark.parametrize("shape", [(16, 4), (4, 16), (8, 8)])
def test_muon_polar_spectral_step_is_the_scaling(scaling, expect, shape):
    opt = muon(0.1, orthogonalizer="polar", scaling=scaling)
    W = jnp.zeros(shape)
    u, _ = opt.update(jnp.asarray(np.random.default_rng(17).standard_normal(shape)), opt.init(W), W)
    sv = np.linalg.svd(np.asarray(u), compute_uv=False)
    np.testing.assert_allclose(sv, 0.1 * expect(*shape), rtol=1e-10)


@pytest.mark.parametrize("shape", [(48, 32), (32, 48)])
def test_muon_bf16_newton_schulz_option(shape):
    """ns_dtype=bfloat16 runs Newton-Schulz in bf16 (torch.optim.Muon's precision) and
    returns the update in the parameter's dtype: it equals the bf16 iteration of the same
    momentum, differs from the float32 update by bf16 rounding (not more), and its singular
    values stay in the composed Newton-Schulz range up to that rounding."""
    g = jnp.asarray(np.random.default_rng(3).standard_normal(shape), jnp.float32)
    W = jnp.zeros(shape, jnp.float32)
    lr = 0.02
    f32 = muon(lr, nesterov=False, scaling="none")
    b16 = muon(lr, nesterov=False, scaling="none", ns_dtype=jnp.bfloat16)
    u32, _ = f32.update(g, f32.init(W), W)
    u16, s16 = b16.update(g, b16.init(W), W)
    assert u16.dtype == jnp.float32 and s16.mu.dtype == jnp.float32
    M = 0.05 * g  # EMA momentum after one step, beta = 0.95
    ref = -lr * newton_schulz(M.astype(jnp.bfloat16)).astype(jnp.float32)
    np.testing.assert_array_equal(np.asarray(u16), np.asarray(ref))
    # bf16 keeps 8 significant bits (relative rounding 2^-9 ~ 2e-3); five steps of a
    # polynomial whose slope reaches ~3.4 near 0 amplify it to a few percent, no more.
    rel = float(jnp.linalg.norm(u16 - u32) / jnp.linalg.norm(u32))
    assert 1e-3 < rel < 0.1, rel
    x = np.linalg.svd(np.asarray(M, np.float64), compute_uv=False)
    lo, hi = newton_schulz_range(float(x.min() / np.linalg.norm(x)))
    sv = np.linalg.svd(np.asarray(u16, np.float64) / lr, compute_uv=False)
    assert lo * 0.9 <= sv.min() and sv.max() <= hi * 1.05, (sv.min(), sv.max(), lo, hi)
    with pytest.raises(ValueError, match="ns_dtype"):
        muon(orthogonalizer="polar", ns_dtype=jnp.bfloat16)
    with pytest.raises(ValueError, match="ns_dtype"):
        muon(ns_dtype=jnp.int32)




def test_one_compile_across_hyperparameter_values_and_vmap_over_learning_rates():
    traces = []

    def step(lr, mom, W, g):
        traces.append(1)
        opt = muon(lr, mom)
        u, _ = opt.update(g, opt.init(W), W)
        return u

    f = jax.jit(step)
    W = jnp.zeros((6, 4), jnp.float32)
    g = jnp.ones((6, 4), jnp.float32)
    for lr, mom in [(0.01, 0.9), (0.02, 0.95), (0.5, 0.0)]:
        f(jnp.float32(lr), jnp.float32(mom), W, g)
    assert len(traces) == 1
    lrs = jnp.asarray([0.01, 0.02, 0.04], jnp.float32)
    us = jax.vmap(step, in_axes=(0, None, None, None))(lrs, jnp.float32(0.9), W, g)
    norms = np.linalg.norm(np.asarray(us).reshape(3, -1), axis=1)
    np.testing.assert_allclose(norms / norms[0], [1, 2, 4], rtol=1e-5)


def test_drop_into_an_optax_chain():
    opt = optax.chain(optax.clip_by_global_norm(1.0), muon(0.02))
    W = jnp.zeros((5, 5))
    u, _ = opt.update(jnp.ones((5, 5)) * 100, opt.init(W), W)
    assert u.shape == (5, 5) and bool(jnp.isfinite(u).all())


# --- Pytrees: matrix leaves and the element-wise fallback (muon, mano) -----------------

MATRIX_METHODS = {
    "muon": lambda lr, **kw: muon(lr, **kw),
    "muon_polar": lambda lr, **kw: muon(lr, orthogonalizer="polar", **kw),
    "mano": lambda lr, **kw: mano(lr, weight_decay=0.1, **kw),
    "mano_v2": lambda lr, **kw: mano(lr, variant="v2", **kw),
}


def layer_tree(dtype=jnp.float64, seed=20):
    """Parameters of every kind: two matrices, a bias, a scalar and a 3-D kernel."""
    rng = np.random.default_rng(seed)
    shapes = {"w1": (6, 4), "b1": (6,), "w2": (3, 6), "scale": (), "kernel": (2, 3, 2)}
    return {k: jnp.asarray(rng.standard_normal(v), dtype) for k, v in shapes.items()}


def tree_grads(params, steps, seed=21):
    rng = np.random.default_rng(seed)
    return [jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), p.dtype), params)
            for _ in range(steps)]


def run_tree(opt, params, grads):
    """``run`` for a parameter tree: the iterates after each of the updates, jitted."""

    def step(carry, g):
        p, state = carry
        u, state = opt.update(g, state, p)
        p = jax.tree.map(jnp.add, p, u)
        return (p, state), p

    stacked = jax.tree.map(lambda *gs: jnp.stack(gs), *grads)
    _, traj = jax.jit(lambda p, gs: jax.lax.scan(step, (p, opt.init(p)), gs))(params, stacked)
    return traj  # a tree of stacked iterates


MATRIX_KEYS = ("w1", "w2")
OTHER_KEYS = ("b1", "scale", "kernel")


@pytest.mark.parametrize("name", sorted(MATRIX_METHODS))
def test_matrix_leaves_get_the_matrix_update_and_the_rest_adamw(name):
    """In a tree, each matrix follows the trajectory of the matrix method run on it alone;
    vectors, scalars and 3-D leaves follow our adamw (same learning rate, b1 0.9, b2 0.999,
    eps 1e-8, no weight decay) run on them alone."""
    lr = 0.01
    params = layer_tree()
    grads = tree_grads(params, 12)
    traj = run_tree(MATRIX_METHODS[name](lr), params, grads)
    for key in MATRIX_KEYS:
        alone = run(MATRIX_METHODS[name](lr), params[key], [g[key] for g in grads])
        np.testing.assert_array_equal(np.asarray(traj[key]), np.asarray(jnp.stack(alone)))
    others = {k: params[k] for k in OTHER_KEYS}
    ref = run_tree(adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0), others,
                   [{k: g[k] for k in OTHER_KEYS} for g in grads])
    for key in OTHER_KEYS:
        np.testing.assert_array_equal(np.asarray(traj[key]), np.asarray(ref[key]))


@pytest.mark.parametrize("factory", [muon, mano])
def test_fallback_state_and_momentum_layout(factory):
    W = jnp.ones((4, 3))
    single = factory().init(W)
    # A single matrix: the state of a plain matrix method, with no fallback state.
    assert single.fallback is None and single.mu.shape == (4, 3)
    state = factory().init(layer_tree())
    assert set(k for k, v in state.mu.items() if isinstance(v, optax.MaskedNode)) == set(
        OTHER_KEYS)
    assert state.mu["w1"].shape == (6, 4)
    fb_mu = state.fallback.mu  # the default fallback: our AdamW, over the other leaves only
    assert {k for k, v in fb_mu.items() if not isinstance(v, optax.MaskedNode)} == set(OTHER_KEYS)


@pytest.mark.parametrize("factory", [muon, mano])
def test_fallback_is_configurable(factory):
    params = layer_tree()
    g = tree_grads(params, 1)[0]
    # Any optax transformation: plain SGD on the non-matrix leaves.
    opt = factory(0.01, fallback=optax.sgd(0.5))
    u, _ = opt.update(g, opt.init(params), params)
    for key in OTHER_KEYS:
        np.testing.assert_allclose(u[key], -0.5 * g[key], rtol=1e-15)
    ref, _ = factory(0.01).update(g, factory(0.01).init(params), params)
    for key in MATRIX_KEYS:
        np.testing.assert_array_equal(u[key], ref[key])
    # The default AdamW's own learning rate: its first step is -lr * sign(g) (up to eps).
    opt = factory(0.01, fallback_learning_rate=0.3)
    u, _ = opt.update(g, opt.init(params), params)
    np.testing.assert_allclose(u["b1"], -0.3 * np.sign(g["b1"]), rtol=1e-6)
    with pytest.raises(ValueError, match="fallback_learning_rate"):
        factory(fallback=optax.sgd(0.1), fallback_learning_rate=0.1)
    with pytest.raises(TypeError, match="fallback"):
        factory(fallback="adam")


# --- Learning-rate schedules -----------------------------------------------------------

SCHEDULED = {
    "adamw": lambda lr: adamw(lr, weight_decay=0.1),
    "muon": lambda lr: muon(lr, weight_decay=0.1),
    "mano": lambda lr: mano(lr, weight_decay=0.1),
    "mano_v2": lambda lr: mano(lr, variant="v2"),
    "sgd": lambda lr: sgd(lr, 0.9, nesterov=True, weight_decay=0.1),
    "sign_descent": lambda lr: sign_descent(lr, 0.5),
    "normalized_gd": lambda lr: normalized_gd(lr, 0.5),
}


def updates_at_fixed_params(opt, params, grads):
    """The updates of a gradient stream at fixed parameters (so that only the rate varies)."""
    state = opt.init(params)
    out = []
    update = jax.jit(opt.update)
    for g in grads:
        u, state = update(g, state, params)
        out.append(u)
    return out


@pytest.mark.parametrize("name", sorted(SCHEDULED))
def test_a_constant_schedule_equals_the_fixed_learning_rate(name):
    params = layer_tree() if name in ("muon", "mano", "mano_v2") else layer_tree()["w1"]
    grads = tree_grads(params, 6)
    fixed = updates_at_fixed_params(SCHEDULED[name](0.02), params, grads)
    sched = updates_at_fixed_params(SCHEDULED[name](optax.constant_schedule(0.02)), params,
                                    grads)
    for a, b in zip(fixed, sched, strict=True):
        jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)),
                     a, b)


@pytest.mark.parametrize("name", sorted(SCHEDULED))
def test_update_k_uses_the_schedule_at_k(name):
    """Every update is linear in the rate and its state does not depend on it, so at fixed
    parameters update k of a schedule is schedule(k) times update k at rate 1 (optax's
    convention: the first update uses schedule(0)). Fallback leaves follow it too."""
    schedule = optax.linear_schedule(0.05, 0.01, transition_steps=4, transition_begin=1)
    params = layer_tree() if name in ("muon", "mano", "mano_v2") else layer_tree()["w1"]
    grads = tree_grads(params, 7)
    unit = updates_at_fixed_params(SCHEDULED[name](1.0), params, grads)
    sched = updates_at_fixed_params(SCHEDULED[name](schedule), params, grads)
    for k, (a, b) in enumerate(zip(unit, sched, strict=True)):
        eta = float(schedule(jnp.int32(k)))  # the state's count is int32
        jax.tree.map(lambda x, y, eta=eta: np.testing.assert_allclose(y, eta * x, rtol=1e-12,
                                                                      atol=1e-15), a, b)
    assert [float(schedule(k)) for k in (0, 1, 3, 5, 6)] == pytest.approx(
        [0.05, 0.05, 0.03, 0.01, 0.01])


def test_a_scheduled_update_compiles_once_across_steps():
    traces = []
    opt = muon(optax.cosine_decay_schedule(0.02, 100))

    def step(params, state, g):
        traces.append(1)
        return opt.update(g, state, params)

    f = jax.jit(step)
    params = layer_tree(jnp.float32)
    state = opt.init(params)
    for g in tree_grads(params, 3):
        u, state = f(params, state, g)
    assert len(traces) == 1 and int(state.count) == 3 and int(state.fallback.count) == 3
