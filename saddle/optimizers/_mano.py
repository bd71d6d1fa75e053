"""Mano: alternating row/column-normalized tangent momentum (v1 and v2)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..fields import choice_field
from ..reduce import tree_norm, tree_sum
from ._base import (
    cast,
    decayed_step,
    learning_rate_at,
    map_leaves,
    split_matrices,
    zeros_like_tree,
)
from ._fallback import make_fallback
from ._spec import EPS, LEARNING_RATE, MOMENTUM, NESTEROV, WEIGHT_DECAY, OptimizerSpec, register

__all__ = ["mano", "ManoState", "mano_direction"]

VARIANTS = ("v1", "v2")


class ManoState(NamedTuple):
    count: jax.Array  # optimizer steps taken; the axis of step t is t mod 2
    mu: optax.Updates  # the momentum of the matrix leaves (MaskedNode at the others)
    fallback: optax.OptState = None  # the fallback's state; None when all leaves are matrices


def _slice_norm(x, axis):
    return tree_norm(x, axis=axis, keepdims=True)


def mano_direction(V: jax.Array, theta: jax.Array, axis: int, variant: str, eps) -> jax.Array:
    """The unit-slice tangent direction v̂ of Mano for reduction axis ``axis`` (0 or 1).

    v1: θ̂ = θ / max(‖θ‖_{2,k}, ε); v = V − θ̂ ⊙ ⟨V, θ̂⟩_k; v̂ = v / max(‖v‖_{2,k}, ε).
    v2: v = V − θ ⊙ ⟨V, θ⟩_k (raw θ); v̂ = v / (‖v‖_{2,k} + ε).
    """
    eps = cast(eps, V)
    if variant == "v1":
        th = theta / jnp.maximum(_slice_norm(theta, axis), eps)
        v = V - th * tree_sum(V * th, axis=axis, keepdims=True)
        return v / jnp.maximum(_slice_norm(v, axis), eps)
    v = V - theta * tree_sum(V * theta, axis=axis, keepdims=True)
    return v / (_slice_norm(v, axis) + eps)


def mano(
    learning_rate=1e-3,
    momentum=0.95,
    *,
    variant: str = "v1",
    nesterov: bool | None = None,
    eps=1e-8,
    weight_decay=0.0,
    fallback: optax.GradientTransformation | None = None,
    fallback_learning_rate=None,
) -> optax.GradientTransformation:
    r"""Mano: heavy-ball momentum projected on the tangent space of alternating slices.

    Step t (counting from 0) uses the axis k = t mod 2. k = 0 reduces over dim 0, so each
    column (length m) becomes a unit vector and the scale is √m; k = 1 works per row with
    scale √n.

    .. math::

        M &\leftarrow \mu M + g, \qquad V = \begin{cases} g + \mu M & \text{Nesterov}\\
            M & \text{else}\end{cases} \\
        \text{v1:}\quad \hat\theta &= \theta / \max(\lVert\theta\rVert_{2,k}, \epsilon),\;
            v = V - \hat\theta \odot \langle V, \hat\theta\rangle_k,\;
            \hat v = v / \max(\lVert v\rVert_{2,k}, \epsilon) \\
        \text{v2:}\quad v &= V - \theta \odot \langle V, \theta\rangle_k,\;
            \hat v = v / (\lVert v\rVert_{2,k} + \epsilon) \\
        \theta &\leftarrow \theta (1 - \eta\lambda) - 0.2\,\eta \sqrt{n_k}\, \hat v,
            \qquad n_0 = m,\; n_1 = n

    The update RMS is exactly 0.2η when no slice is zero. v1 is orthogonal to θ slice by
    slice, so it cannot change slice norms at first order. A zero slice of θ gets no
    projection (plain normalized momentum); a zero tangent slice gets a zero update.

    Parameters may be any pytree. Each 2-D leaf gets the update above, all with the same
    axis k at a step. Every other leaf (vectors such as biases, scalars, and arrays of 3 or
    more dimensions, which are not reshaped) goes to an element-wise ``fallback``, AdamW by
    default. A single matrix, or a tree of matrices only, has no fallback state.

    Args:
        learning_rate: η: a float, a traced scalar or an optax schedule of the update count
            (the first update uses ``schedule(0)``).
        momentum: μ. eps: ε (a floor in v1, additive in v2).
        weight_decay: λ, decoupled. variant: "v1" (the paper's algorithm) or "v2".
        nesterov: None means the variant's default (v1 off, v2 on).
        fallback: the optax ``GradientTransformation`` of the non-matrix leaves; it sees
            only them (the matrix leaves are ``optax.MaskedNode``, as in ``optax.masked``).
            None (default): :func:`~saddle.optimizers.adamw` with b1 0.9, b2 0.999,
            eps 1e-8, no weight decay and ``fallback_learning_rate``.
        fallback_learning_rate: the default fallback's learning rate (float, traced scalar
            or schedule); None (default) uses ``learning_rate``, the paper's choice of one
            learning rate for Mano and AdamW. Only without ``fallback``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from saddle.optimizers import mano
        >>> opt = mano(1e-3)
        >>> W = jax.random.normal(jax.random.key(0), (4, 3)); state = opt.init(W)
        >>> u, state = opt.update(jax.random.normal(jax.random.key(1), (4, 3)), state, W)
        >>> float(jnp.sqrt(jnp.mean(u**2)))   # 0.2 * lr
        0.0002...

    References:
        Gu & Xie, "Mano", arXiv 2601.23000, and its official ``mano.py`` / ``mano_v2.py``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant: got {variant!r}; allowed: v1, v2")
    use_nesterov = (variant == "v2") if nesterov is None else bool(nesterov)

    fallback = make_fallback("mano", fallback, fallback_learning_rate, learning_rate)

    def init(params):
        matrices, others = split_matrices(params)
        return ManoState(count=jnp.zeros([], jnp.int32), mu=zeros_like_tree(matrices),
                         fallback=fallback.init(others))

    def update(grads, state, params):
        lr = learning_rate_at(learning_rate, state.count)
        g_mat, g_other = split_matrices(grads)
        p_mat, p_other = split_matrices(params)
        k = state.count % 2

        def leaf(g, M, p):
            mu = cast(momentum, g)
            M = mu * M + g
            V = g + mu * M if use_nesterov else M
            m, n = g.shape
            # cond, not where: outside vmap only the step's own axis is computed.
            direction = jax.lax.cond(
                k == 0,
                lambda: mano_direction(V, p, 0, variant, eps) * (0.2 * math.sqrt(m)),
                lambda: mano_direction(V, p, 1, variant, eps) * (0.2 * math.sqrt(n)),
            )
            return decayed_step(direction, p, lr, weight_decay), M

        ups, mus = map_leaves(leaf, g_mat, state.mu, p_mat)
        ups, fallback_state = fallback.update(ups, g_other, state.fallback, p_other)
        return ups, ManoState(count=state.count + 1, mu=mus, fallback=fallback_state)

    return optax.GradientTransformation(init, update)


VARIANT = choice_field("variant", None, VARIANTS, "mano: algorithm version", "optimizer")


@register
class ManoSpec(OptimizerSpec):
    name = "mano"
    summary = "Mano: alternating slice-normalized tangent momentum"
    fields = (LEARNING_RATE, EPS, WEIGHT_DECAY, MOMENTUM, NESTEROV, VARIANT)
    # nesterov's default depends on the variant (v1 off, v2 on): see normalize.
    defaults = dict(learning_rate=1e-3, momentum=0.95, nesterov=None, variant="v1", eps=1e-8,
                    weight_decay=0.0)
    static = ("variant", "nesterov")
    traced = ("learning_rate", "eps", "weight_decay", "momentum")
    numba_code = 4

    def normalize(self, values):
        if values["nesterov"] is None:
            values["nesterov"] = values["variant"] == "v2"

    def build(self, static, s):
        return mano(s["learning_rate"], momentum=s["momentum"], eps=s["eps"],
                    weight_decay=s["weight_decay"], **static)

    def update_rms_per_lr(self, config) -> float:
        """0.2, exact: every slice-normalized update has RMS 0.2 eta; Frobenius 0.2 sqrt(mn)
        (exact), spectral 0.2 (sqrt m + sqrt n) (incoherent convention)."""
        return 0.2
