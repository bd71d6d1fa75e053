"""Baselines: SGD (plain, heavy ball, Nesterov), sign descent and normalized GD."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..errors import ConfigError
from ..reduce import tree_norm
from ..registry import LANDSCAPES, NOISES
from ._base import cast, decayed_step, learning_rate_at, map_leaves, zeros_like_tree
from ._spec import (
    EPS,
    LEARNING_RATE,
    MOMENTUM,
    NESTEROV,
    WEIGHT_DECAY,
    OptimizerSpec,
    incoherent_norms,
    register,
)

__all__ = ["sgd", "sign_descent", "normalized_gd", "MomentumState"]


class MomentumState(NamedTuple):
    count: jax.Array  # updates done
    mu: optax.Updates


def _momentum_method(direction_fn, momentum, nesterov, learning_rate, weight_decay):
    """A one-buffer method: M <- mu M + g; step along direction_fn(M or g + mu M).

    ``learning_rate`` is a float, a traced scalar or an optax schedule of the update count.
    """

    def init(params):
        return MomentumState(count=jnp.zeros([], jnp.int32), mu=zeros_like_tree(params))

    def update(grads, state, params):
        lr = learning_rate_at(learning_rate, state.count)

        def leaf(g, M, p):
            mu = cast(momentum, g)
            M = mu * M + g
            V = g + mu * M if nesterov else M
            return decayed_step(direction_fn(V), p, lr, weight_decay), M

        ups, mus = map_leaves(leaf, grads, state.mu, params)
        return ups, MomentumState(count=state.count + 1, mu=mus)

    return optax.GradientTransformation(init, update)


def sgd(learning_rate=0.1, momentum=0.0, *, nesterov: bool = False, weight_decay=0.0):
    r"""SGD with optional heavy-ball or Nesterov momentum (PyTorch's buffer, dampening 0).

    .. math::

        M \leftarrow \mu M + g,\qquad
        \theta \leftarrow \theta(1-\eta\lambda) - \eta\,
        \begin{cases} g + \mu M & \text{Nesterov}\\ M & \text{else}\end{cases}

    ``momentum=0`` is plain SGD. Weight decay is decoupled, like every optimizer here
    (PyTorch's SGD couples it into g; the two agree when ``momentum=0``). ``learning_rate``
    is a float, a traced scalar or an optax schedule of the update count.

    Example:
        >>> import jax.numpy as jnp
        >>> from saddle.optimizers import sgd
        >>> opt = sgd(0.1, momentum=0.9)
        >>> W = jnp.zeros(3); s = opt.init(W)
        >>> u, s = opt.update(jnp.ones(3), s, W)   # u = -0.1

    References:
        ``torch.optim.SGD``; ``optax.sgd``; Sutskever et al., ICML 2013 (Nesterov form).
    """
    return _momentum_method(lambda V: V, momentum, nesterov, learning_rate, weight_decay)


def sign_descent(learning_rate=1e-3, momentum=0.0, *, weight_decay=0.0):
    r"""Sign descent with optional momentum: θ ← θ(1 − ηλ) − η·sign(M), M ← μM + g.

    Every coordinate moves by exactly η (0 where M is 0): the ℓ∞ steepest-descent step.
    ``learning_rate`` is a float, a traced scalar or an optax schedule of the update count.

    Example:
        >>> import jax.numpy as jnp
        >>> from saddle.optimizers import sign_descent
        >>> opt = sign_descent(0.01)
        >>> W = jnp.zeros(3); s = opt.init(W)
        >>> u, s = opt.update(jnp.array([2.0, -1e-9, 0.0]), s, W)   # [-0.01, 0.01, 0]

    References:
        Bernstein et al., "signSGD", ICML 2018.
    """
    return _momentum_method(jnp.sign, momentum, False, learning_rate, weight_decay)


def normalized_gd(learning_rate=0.02, momentum=0.0, *, eps=1e-12, weight_decay=0.0):
    r"""Normalized gradient descent: θ ← θ(1 − ηλ) − η·M / max(‖M‖_F, ε), M ← μM + g.

    Each step has Frobenius length η (zero when M = 0). Without noise it leaves a saddle
    ball in a time independent of the dimension, the natural "ballistic" yardstick.
    ``learning_rate`` is a float, a traced scalar or an optax schedule of the update count.

    Example:
        >>> import jax.numpy as jnp
        >>> from saddle.optimizers import normalized_gd
        >>> opt = normalized_gd(0.5)
        >>> W = jnp.zeros(2); s = opt.init(W)
        >>> u, s = opt.update(jnp.array([3.0, 4.0]), s, W)   # [-0.3, -0.4]

    References:
        Murray, Swenson & Kar, "Revisiting Normalized Gradient Descent: Fast Evasion of
        Saddle Points", IEEE TAC 2019.
    """

    def direction(V):
        return V / jnp.maximum(tree_norm(V), cast(eps, V))

    return _momentum_method(direction, momentum, False, learning_rate, weight_decay)


@register
class SGDSpec(OptimizerSpec):
    name = "sgd"
    summary = "SGD, heavy ball or Nesterov"
    equivariant = True  # linear in the gradients
    elementwise = True
    fields = (LEARNING_RATE, WEIGHT_DECAY, MOMENTUM, NESTEROV)
    defaults = dict(learning_rate=0.1, momentum=0.0, nesterov=False, weight_decay=0.0)
    static = ("nesterov",)
    traced = ("learning_rate", "weight_decay", "momentum")
    numba_code = 1

    def build(self, static, s):
        return sgd(s["learning_rate"], momentum=s["momentum"], nesterov=static["nesterov"],
                   weight_decay=s["weight_decay"])

    def update_rms_per_lr(self, config) -> float:
        """The RMS of the first stochastic gradient: the bulk's pull on a random init and
        the noise's per-entry scale (1 when both are zero). Frobenius RMS sqrt(mn), spectral
        RMS (sqrt m + sqrt n): both parts are dense and incoherent."""
        landscape = LANDSCAPES[config.landscape]
        lam2 = landscape.mean_squared_curvature(config)
        init = config.init_scale or 0.0
        noise = NOISES[config.noise].entry_std(config)
        if NOISES[config.noise].state_dependent:  # minibatch: the start's, where derived
            noise = landscape.minibatch_entry_std(config)
            if noise is None:
                raise ConfigError("noise", config.noise, "a noise model with a finite "
                                  "per-entry scale, or minibatch noise on a landscape that "
                                  "derives its scale at the start (SGD's matched learning "
                                  "rates are set from it)")
        if not math.isfinite(noise):  # heavy-tailed noise
            raise ConfigError("noise", config.noise, "a noise model with a finite per-entry "
                              "scale (SGD's matched_rms learning rate is set from it)")
        rms = math.sqrt(init**2 * lam2 + noise**2)
        return rms if rms > 0 else 1.0


@register
class SignDescentSpec(OptimizerSpec):
    name = "sign_descent"
    elementwise = True
    summary = "sign descent with optional momentum"
    fields = (LEARNING_RATE, WEIGHT_DECAY, MOMENTUM)
    defaults = dict(learning_rate=1e-3, momentum=0.0, weight_decay=0.0)
    traced = ("learning_rate", "weight_decay", "momentum")
    numba_code = 2

    def build(self, static, s):
        return sign_descent(s["learning_rate"], momentum=s["momentum"],
                            weight_decay=s["weight_decay"])

    def update_rms_per_lr(self, config) -> float:
        """1, exact (entries +-1); Frobenius sqrt(mn) (exact), spectral sqrt m + sqrt n (a
        random sign matrix; a rank-one sign pattern would give sqrt(mn))."""
        return 1.0


@register
class NormalizedGDSpec(OptimizerSpec):
    name = "normalized_gd"
    summary = "normalized gradient descent (Frobenius step eta)"
    equivariant = True  # the Frobenius norm is rotation-invariant
    fields = (LEARNING_RATE, EPS, WEIGHT_DECAY, MOMENTUM)
    defaults = dict(learning_rate=0.02, momentum=0.0, eps=1e-12, weight_decay=0.0)
    traced = ("learning_rate", "eps", "weight_decay", "momentum")
    numba_code = 3

    def build(self, static, s):
        return normalized_gd(s["learning_rate"], momentum=s["momentum"], eps=s["eps"],
                             weight_decay=s["weight_decay"])

    def update_rms_per_lr(self, config) -> float:
        """1/sqrt(mn) at the config's (m, n) (see :meth:`leaf_norms_per_lr`)."""
        return 1.0 / math.sqrt(config.m * config.n)

    def leaf_norms_per_lr(self, config, shape) -> dict[str, float]:
        """Each leaf is normalized on its own: its step has Frobenius norm eta exactly
        (without momentum), RMS eta/sqrt(mn), spectral (sqrt m + sqrt n)/sqrt(mn) eta
        (incoherent convention)."""
        m, n = shape
        return incoherent_norms(1.0 / math.sqrt(m * n), m, n)
