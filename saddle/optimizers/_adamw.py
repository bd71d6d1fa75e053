"""AdamW with PyTorch's algebra (identical to optax.adamw)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..fields import float_field
from ._base import cast, decayed_step, learning_rate_at, map_leaves, zeros_like_tree
from ._spec import EPS, LEARNING_RATE, WEIGHT_DECAY, OptimizerSpec, register

__all__ = ["adamw", "AdamWState"]


class AdamWState(NamedTuple):
    count: jax.Array  # updates done
    mu: optax.Updates
    nu: optax.Updates


def adamw(
    learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0
) -> optax.GradientTransformation:
    r"""AdamW with decoupled weight decay, in PyTorch's algebra.

    .. math::

        t &\leftarrow t + 1,\qquad
        m \leftarrow \beta_1 m + (1-\beta_1) g,\qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \theta &\leftarrow \theta(1 - \eta\lambda)
          - \eta\, \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    ε is added after bias correction. For ``|g| >> eps`` the step is about η per coordinate
    and sign-like; a zero gradient from the start gives a zero step.

    Args:
        learning_rate: η: a float, a traced scalar or an optax schedule of the update count
            (the first update uses ``schedule(0)``, as in optax).
        b1, b2: moment decays β1, β2.
        eps: ε.
        weight_decay: λ, decoupled and scaled by η (PyTorch's default is 1e-2, optax's 1e-4;
            the lab's 0).

    Example:
        >>> import jax.numpy as jnp
        >>> from saddle.optimizers import adamw
        >>> opt = adamw(1e-3)
        >>> W = jnp.ones((3, 2)); state = opt.init(W)
        >>> updates, state = opt.update(jnp.full((3, 2), 0.5), state, W)
        >>> W = W + updates        # each entry moved by -1e-3 (up to eps)

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019;
        ``torch.optim.AdamW``; ``optax.adamw``.
    """

    def init(params):
        return AdamWState(
            count=jnp.zeros([], jnp.int32), mu=zeros_like_tree(params), nu=zeros_like_tree(params)
        )

    def update(grads, state, params):
        lr = learning_rate_at(learning_rate, state.count)
        count = state.count + 1

        def leaf(g, m, v, p):
            beta1, beta2 = cast(b1, g), cast(b2, g)
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            t = count.astype(g.dtype)
            m_hat = m / (1 - beta1**t)
            v_hat = v / (1 - beta2**t)
            step = m_hat / (jnp.sqrt(v_hat) + cast(eps, g))
            return decayed_step(step, p, lr, weight_decay), m, v

        ups, mus, nus = map_leaves(leaf, grads, state.mu, state.nu, params)
        return ups, AdamWState(count=count, mu=mus, nu=nus)

    return optax.GradientTransformation(init, update)


B1 = float_field("b1", None, "adamw: first-moment decay", "optimizer", lo=0, hi=1, hi_open=True)
B2 = float_field("b2", None, "adamw: second-moment decay", "optimizer", lo=0, hi=1, hi_open=True)


@register
class AdamWSpec(OptimizerSpec):
    name = "adamw"
    elementwise = True
    summary = "AdamW, PyTorch's algebra"
    fields = (LEARNING_RATE, B1, B2, EPS, WEIGHT_DECAY)
    defaults = dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0)
    traced = ("learning_rate", "b1", "b2", "eps", "weight_decay")
    numba_code = 0

    def build(self, static, s):
        return adamw(s["learning_rate"], b1=s["b1"], b2=s["b2"], eps=s["eps"],
                     weight_decay=s["weight_decay"])

    def update_rms_per_lr(self, config) -> float:
        """0.2: the typical AdamW update RMS (Moonlight's matching convention); Frobenius
        0.2 sqrt(mn), spectral 0.2 (sqrt m + sqrt n) (dense incoherent update; see
        :meth:`OptimizerSpec.update_norms_per_lr`)."""
        return 0.2
