r"""Minibatch gradient noise: SGD on a network landscape's population or empirical loss.

For a landscape whose spec sets ``minibatch = True`` (the two-layer linear network; its
landscape object provides ``draw_inputs(gen, B)`` and ``minibatch_gradient(W, X)``), the
stochastic gradient is the gradient of the loss on B = ``minibatch_size`` inputs with
noiseless targets y = S x:

- ``samples = 0`` (online SGD): B fresh inputs x ~ N(0, I_n) every step; the landscape is
  the population loss;
- ``samples = N > 0``: B rows picked uniformly with replacement from the landscape's data
  set X (N inputs drawn once per landscape seed); the landscape is the empirical loss on X.

For the linear network, with P = W_2 W_1 and X_B the (B, n) batch,

.. math::

    G_B = (P - S) \frac{X_B^\top X_B}{B}, \qquad dW_1 = W_2^\top G_B, \qquad dW_2 = G_B W_1^\top,

and Xi = (dW_1, dW_2) - grad f(W): the loss and the escape criteria stay full-batch (on the
population or the whole data set). E X_B^T X_B / B is I, or Sigma-hat = X^T X / N, so
E Xi = 0 either way. Xi is state-dependent: its covariance is that of one sample's gradient
divided by B. At the origin it is exactly zero (each layer's gradient carries the other
layer as a factor), so a run must not start exactly at the saddle to move at all (the
linear network's default is ``init = "random"``). Full batch is noise ``none``.

The inputs or row indices come from the run's noise stream at the step (generator
sub-stream 0 for normals, 2 for the indices). The numba kernels do not run it, and the
theory's noise facts are unknown here (infinite).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..errors import ConfigError
from ..fields import int_field
from ..registry import LANDSCAPES
from ._spec import NoiseSpec, register

__all__ = ["Minibatch", "MINIBATCH_SIZE"]

MINIBATCH_SIZE = int_field("minibatch_size", 16, "minibatch: inputs per step (fresh "
                           "N(0, I) inputs with samples = 0, else rows picked with "
                           "replacement from the data set; needs a landscape with minibatch "
                           "gradients, e.g. linear_network)", "noise", lo=1, hi=2**20)


@register
class Minibatch(NoiseSpec):
    name = "minibatch"
    summary = ("SGD: the gradient on B fresh Gaussian inputs or B rows of the data set "
               "(linear_network)")
    fields = (MINIBATCH_SIZE,)
    static = ("minibatch_size",)
    state_dependent = True
    gaussian_along_e = False
    has_tail_bound = False

    def check(self, values):
        spec = LANDSCAPES[values["landscape"]]
        if not spec.minibatch:
            have = [s.name for s in LANDSCAPES if s.minibatch]
            raise ConfigError("noise", values["noise"],
                              f"a landscape with minibatch gradients ({', '.join(have)}), "
                              f"not {values['landscape']!r}, or another noise model")

    def sample(self, model, gen, shape, dtype):
        raise NotImplementedError("minibatch noise depends on the iterate: see gradient_noise")

    def gradient_noise(self, model, gen, landscape, params, grad):
        X = landscape.draw_inputs(gen, dict(model.static)["minibatch_size"])
        mb = landscape.minibatch_gradient(params, X)
        return jax.tree.map(jnp.subtract, mb, grad)  # any pytree of parameters

    # --- facts: unknown in closed form (state-dependent) ----------------------------------
    def entry_std(self, config) -> float:
        return math.inf

    def e_variance(self, config, row_weights):
        return (math.inf,) * config.escape_rank

    def typical_spectral_norm(self, f) -> float:
        return math.inf
