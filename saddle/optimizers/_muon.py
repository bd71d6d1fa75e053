"""Muon: momentum orthogonalized by Newton-Schulz or by the exact polar factor."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..fields import choice_field, int_field
from ._base import (
    cast,
    decayed_step,
    learning_rate_at,
    map_leaves,
    split_matrices,
    zeros_like_tree,
)
from ._fallback import make_fallback
from ._orthogonalize import NS_COEFFS, newton_schulz, polar_factor
from ._spec import EPS, LEARNING_RATE, MOMENTUM, NESTEROV, WEIGHT_DECAY, OptimizerSpec, register

__all__ = ["muon", "MuonState", "muon_scale"]

ORTHOGONALIZERS = ("newton_schulz", "polar")
SCALINGS = ("keller", "moonlight", "none")


class MuonState(NamedTuple):
    count: jax.Array  # updates done
    mu: optax.Updates  # the momentum of the matrix leaves (MaskedNode at the others)
    fallback: optax.OptState = None  # the fallback's state; None when all leaves are matrices


def muon_scale(shape: tuple[int, int], scaling: str) -> float:
    """The update multiplier of a scaling convention for an (out, in) = (m, n) matrix."""
    m, n = shape
    if scaling == "keller":
        return math.sqrt(max(1.0, m / n))
    if scaling == "moonlight":
        return 0.2 * math.sqrt(max(m, n))
    if scaling == "none":
        return 1.0
    raise ValueError(f"scaling: got {scaling!r}; allowed: {', '.join(SCALINGS)}")


def muon(
    learning_rate=0.02,
    momentum=0.95,
    *,
    nesterov: bool = True,
    ns_steps: int = 5,
    orthogonalizer: str = "newton_schulz",
    scaling: str = "keller",
    eps=1e-7,
    weight_decay=0.0,
    momentum_form: str = "ema",
    ns_coeffs=NS_COEFFS,
    ns_dtype=None,
    fallback: optax.GradientTransformation | None = None,
    fallback_learning_rate=None,
) -> optax.GradientTransformation:
    r"""Muon, in Keller Jordan's algebra, with a choice of orthogonalizer and scaling.

    .. math::

        M &\leftarrow \beta M + (1-\beta) g, \qquad
        U = \begin{cases} (1-\beta) g + \beta M & \text{Nesterov} \\ M & \text{else}\end{cases}\\
        O &= \operatorname{orth}(U) \cdot s(m, n), \qquad
        \theta \leftarrow \theta(1 - \eta\lambda) - \eta\, O

    with ``orth`` = 5-step quintic Newton-Schulz (``newton_schulz``) or the exact polar
    factor U Vᵀ (``polar``), and the scale s: ``keller`` √max(1, m/n) in (out, in) layout,
    ``moonlight`` 0.2·√max(m, n) (update RMS 0.2, to match AdamW), ``none`` 1 (spectral
    step η). ``momentum_form="sum"`` uses M ← βM + g and U = g + βM instead; the
    orthogonalized update is the same up to ε, because orth ignores scale.

    Parameters may be any pytree. Each 2-D leaf, read in (out, in) layout, gets the update
    above. Every other leaf (vectors such as biases, scalars, and arrays of 3 or more
    dimensions, which are not reshaped) goes to an element-wise ``fallback``, AdamW by
    default, as in ``optax.contrib.muon``. A single matrix, or a tree of matrices only, has
    no fallback state.

    Args:
        learning_rate: η: a float, a traced scalar or an optax schedule of the update count
            (the first update uses ``schedule(0)``).
        momentum: β. eps: added to ‖U‖_F before Newton-Schulz.
        weight_decay: λ, decoupled. nesterov, ns_steps, orthogonalizer, scaling,
        momentum_form, ns_coeffs: structure switches (keyword-only).
        ns_dtype: the dtype Newton-Schulz runs in, e.g. ``jnp.bfloat16`` (as
            ``torch.optim.Muon`` always does); None (default) runs it in the parameter's
            dtype. The momentum and the update stay in the parameter's dtype.
            Newton-Schulz only.
        fallback: the optax ``GradientTransformation`` of the non-matrix leaves; it sees
            only them (the matrix leaves are ``optax.MaskedNode``, as in ``optax.masked``).
            None (default): :func:`~saddle.optimizers.adamw` with b1 0.9, b2 0.999,
            eps 1e-8, no weight decay and ``fallback_learning_rate``.
        fallback_learning_rate: the default fallback's learning rate (float, traced scalar
            or schedule); None (default) uses ``learning_rate``. Only without ``fallback``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from saddle.optimizers import muon
        >>> opt = muon(0.02, orthogonalizer="polar", scaling="none")
        >>> W = jnp.zeros((4, 3)); state = opt.init(W)
        >>> updates, state = opt.update(jax.random.normal(jax.random.key(0), (4, 3)), state, W)
        >>> float(jnp.linalg.norm(updates, 2))     # spectral norm eta
        0.02...

        A layer with a bias, and a schedule: the bias gets AdamW's step.

        >>> import optax
        >>> opt = muon(optax.linear_schedule(0.02, 0.0, 100))
        >>> params = {"w": jnp.zeros((4, 3)), "b": jnp.zeros(4)}
        >>> state = opt.init(params)
        >>> grads = {"w": jnp.ones((4, 3)), "b": jnp.ones(4)}
        >>> updates, state = opt.update(grads, state, params)
        >>> updates["b"]                            # -eta(0) = -0.02 per entry (up to eps)
        Array([-0.02, -0.02, -0.02, -0.02], dtype=float32)

    References:
        K. Jordan et al., "Muon: An optimizer for hidden layers", 2024; J. Liu et al.,
        "Muon is Scalable for LLM Training" (Moonlight), 2025; ``optax.contrib.muon``.
    """
    if orthogonalizer not in ORTHOGONALIZERS:
        raise ValueError(
            f"orthogonalizer: got {orthogonalizer!r}; allowed: {', '.join(ORTHOGONALIZERS)}"
        )
    if scaling not in SCALINGS:
        raise ValueError(f"scaling: got {scaling!r}; allowed: {', '.join(SCALINGS)}")
    if momentum_form not in ("ema", "sum"):
        raise ValueError(f"momentum_form: got {momentum_form!r}; allowed: ema, sum")
    if ns_dtype is not None:
        ns_dtype = jnp.dtype(ns_dtype)
        if not jnp.issubdtype(ns_dtype, jnp.floating):
            raise ValueError(f"ns_dtype: got {ns_dtype}; allowed: None or a floating dtype")
        if orthogonalizer != "newton_schulz":
            raise ValueError("ns_dtype: applies to orthogonalizer='newton_schulz' only; "
                             f"got orthogonalizer={orthogonalizer!r}")

    def orth(U):
        if orthogonalizer == "polar":
            return polar_factor(U)
        if ns_dtype is not None and ns_dtype != U.dtype:
            X = U.astype(ns_dtype)
            return newton_schulz(X, ns_steps, ns_coeffs, cast(eps, X)).astype(U.dtype)
        return newton_schulz(U, ns_steps, ns_coeffs, cast(eps, U))

    fallback = make_fallback("muon", fallback, fallback_learning_rate, learning_rate)

    def init(params):
        matrices, others = split_matrices(params)
        return MuonState(count=jnp.zeros([], jnp.int32), mu=zeros_like_tree(matrices),
                         fallback=fallback.init(others))

    def update(grads, state, params):
        lr = learning_rate_at(learning_rate, state.count)
        g_mat, g_other = split_matrices(grads)
        p_mat, p_other = split_matrices(params)

        def leaf(g, M, p):
            beta = cast(momentum, g)
            if momentum_form == "ema":
                M = beta * M + (1 - beta) * g
                U = (1 - beta) * g + beta * M if nesterov else M
            else:
                M = beta * M + g
                U = g + beta * M if nesterov else M
            O = orth(U) * muon_scale(g.shape, scaling)
            return decayed_step(O, p, lr, weight_decay), M

        ups, mus = map_leaves(leaf, g_mat, state.mu, p_mat)
        ups, fallback_state = fallback.update(ups, g_other, state.fallback, p_other)
        return ups, MuonState(count=state.count + 1, mu=mus, fallback=fallback_state)

    return optax.GradientTransformation(init, update)


NS_STEPS = int_field("ns_steps", None, "muon: Newton-Schulz iterations", "optimizer", lo=1, hi=100)
ORTHOGONALIZER = choice_field("orthogonalizer", None, ORTHOGONALIZERS, "muon: orthogonalizer",
                              "optimizer")
SCALING = choice_field("scaling", None, SCALINGS, "muon: update scaling convention", "optimizer")


@register
class MuonSpec(OptimizerSpec):
    name = "muon"
    is_default = True
    equivariant = True  # polar factors and odd matrix polynomials commute with P . Q^T

    def method_label(self, row) -> str:
        """muon-ns (Newton-Schulz) or muon-polar (the exact polar factor)."""
        ns = row.get("orthogonalizer") == "newton_schulz"
        return f"{self.name}-{'ns' if ns else 'polar'}"
    summary = "Muon: orthogonalized momentum (Newton-Schulz or exact polar)"
    fields = (LEARNING_RATE, EPS, WEIGHT_DECAY, MOMENTUM, NESTEROV, NS_STEPS, ORTHOGONALIZER,
              SCALING)
    defaults = dict(learning_rate=0.02, momentum=0.95, nesterov=True, ns_steps=5,
                    orthogonalizer="newton_schulz", scaling="keller", eps=1e-7, weight_decay=0.0)
    static = ("nesterov", "ns_steps", "orthogonalizer", "scaling")
    traced = ("learning_rate", "eps", "weight_decay", "momentum")

    def build(self, static, s):
        return muon(s["learning_rate"], momentum=s["momentum"], eps=s["eps"],
                    weight_decay=s["weight_decay"], **static)

    def update_rms_per_lr(self, config) -> float:
        """The RMS of a whole orthogonalized update (see :meth:`leaf_norms_per_lr`)."""
        return self.update_norms_per_lr(config)["rms"]

    def leaf_norms_per_lr(self, config, shape) -> dict[str, float]:
        """A full-rank orthogonalized update ``s * U V^T`` of an (m, n) leaf has min(m, n)
        singular values equal to the leaf's scale ``s``: spectral ``s``, Frobenius
        ``s sqrt(min(m, n))``, RMS ``s / sqrt(max(m, n))`` (exact for polar; Newton-Schulz
        leaves them near 1)."""
        m, n = shape
        s = muon_scale((m, n), config.scaling)
        return dict(rms=s / math.sqrt(max(m, n)), frobenius=s * math.sqrt(min(m, n)),
                    spectral=s)
