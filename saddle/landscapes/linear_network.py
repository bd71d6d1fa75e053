r"""The two-layer linear network saddle: regression on a low-rank teacher.

With whitened Gaussian inputs x ~ N(0, I_n), the population loss of the student
x -> W_2 W_1 x against the teacher x -> S x is exactly

.. math::

    \tfrac12 \lVert W_2 W_1 - S \rVert_F^2, \qquad
    W_1 \in \mathbb{R}^{h \times n},\ W_2 \in \mathbb{R}^{m \times h},\
    S = \sum_{i < k} s_i u_i v_i^\top,

with s_i = teacher_scale * teacher_decay^i. The parameter is the pytree
``{"W1": (h, n), "W2": (m, h)}`` (h = ``width``, k = ``teacher_rank``), so D = h (m + n).

The lab's loss criterion assumes f(W*) = 0, so the landscape's value is the loss minus its
value at the origin:

.. math::

    f(W) = \tfrac12 \lVert P - S \rVert_F^2 - \tfrac12 \lVert S \rVert_F^2
         = \langle P, \tfrac12 P - S \rangle, \qquad P = W_2 W_1,

evaluated in the second form, which has no cancellation near the origin. Its gradient is
dW_1 = W_2^T G, dW_2 = G W_1^T with G = P - S.

A finite data set (``samples`` = N > 0). N inputs X (N, n), rows x ~ N(0, I_n), are drawn
once from the landscape seed (their own NumPy stream, beside the teacher's: two runs with
different seeds share them). The loss is then the empirical loss with
Sigma-hat = X^T X / N in place of I, shifted the same way:

.. math::

    f(W) = \tfrac12 \operatorname{tr}\bigl((P - S) \hat\Sigma (P - S)^\top\bigr)
         - \tfrac12 \operatorname{tr}\bigl(S \hat\Sigma S^\top\bigr)
         = \langle P \hat\Sigma, \tfrac12 P - S \rangle,

with G = (P - S) Sigma-hat in the same two gradient formulas; ``samples = 0`` is the
population loss above, computed exactly as before. Full batch is noise ``none``; the
``minibatch`` noise picks B rows of X per step (with replacement) from the run's stream.

The saddle. The origin is a critical point (both gradients carry a factor of the other
layer). Its second-order term is -<W_2 W_1, M> with M = S (population) or M = S Sigma-hat
(data set): the term 1/2 tr(P Sigma-hat P^T) is quartic. Write M = sum_i mu_i u_i v_i^T
(its SVD; mu_i = s_i and (u_i, v_i) the teacher's pairs for the population loss). For a unit
hidden vector e and a pair i, W_1 = a e v_i^T, W_2 = b u_i e^T has W_2 W_1 = a b u_i v_i^T,
so the term is -mu_i a b and the Hessian on (a, b) is [[0, -mu_i], [-mu_i, 0]]: eigenvalue
-mu_i along (a, b) = (1, 1)/sqrt(2) (same signs: a b > 0 lowers the loss) and +mu_i along
(1, -1)/sqrt(2). Every other direction (W_1 rows orthogonal to every v_i, W_2 columns
orthogonal to every u_i, or pairs of distinct modes) has curvature 0. So the spectrum at the
origin is +-mu_i, each with multiplicity h, and 0 elsewhere: the escape curvatures are the
singular values of S Sigma-hat (rank <= min(k, N)), close to s_i for N >> n.

The escape directions are the negative-curvature eigenvectors of the first hidden unit
e = e_0:

.. math::

    E_i = \bigl(W_1 = e_0 v_i^\top / \sqrt2,\ W_2 = u_i e_0^\top / \sqrt2\bigr),
    \qquad i < r = \text{escape\_rank} \le k,

with (u_i, v_i) the singular pairs of M (computed once in the shared arrays from the SVD of
S Sigma-hat at unit scale: teacher_scale does not change them), orthonormal over the two
leaves (<E_i, E_j> = (v_i.v_j + u_i.u_j)/2 = delta_ij), with E_i^T H E_i = -mu_i. They span
r of the h k negative directions: a run that learns mode i through another hidden unit (a
random start picks a random combination of units) moves little along E_i, so the projection
criterion undercounts escapes here. The loss criterion measures leaving the plateau whichever
units learn, and it is the family's default (with ``init = "random"``: at the origin every
gradient and the minibatch noise vanish exactly): ``loss_drop`` defaults to
LOSS_DROP_FRACTION * s_1^2 / 2 = s_1^2 / 4, half the first mode's population depth (derived
from teacher_scale in the spec's ``normalize``). It must stay below the depth
1/2 sum_{i < min(h, k)} s_i^2; with a data set the reachable drop is the empirical one
(1/2 sum_i mu_i^2 for h >= k), which differs by O(sqrt(n / N)), so a tiny N may not reach the
default drop. The spec's theory facts (curvature scale, loss scales) are population values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..fields import float_field, int_field
from ..reduce import tree_sum
from ._data import SAMPLES, draw_inputs_once, pick_rows
from ._spec import LandscapeSpec, register
from .base import AbstractLandscape

__all__ = ["LinearNetworkSaddle", "LinearNetworkSpec", "teacher_arrays", "data_arrays",
           "singular_values", "LOSS_DROP_FRACTION"]

_HI = jax.lax.Precision.HIGHEST
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class LinearNetworkSaddle(AbstractLandscape):
    """The origin of a two-layer linear network on a teacher S.

    Attributes:
        S: (m, n) the teacher (scaled).
        U: (m, k) the left singular vectors u_i of S Sigma-hat, orthonormal columns (of S
            itself for the population loss).
        V: (n, k) the right singular vectors v_i of S Sigma-hat.
        width: h, the hidden width (static).
        escape_rank: r <= k (static).
        X: (N, n) the data set's inputs, or None for the population loss (samples = 0).
        Sigma: (n, n) Sigma-hat = X^T X / N, or None.
        SSigma: (m, n) S Sigma-hat (scaled like S), or None.
    """

    S: jax.Array
    U: jax.Array
    V: jax.Array
    width: int = field(metadata=dict(static=True))
    escape_rank: int = field(metadata=dict(static=True))
    X: jax.Array | None = None
    Sigma: jax.Array | None = None
    SSigma: jax.Array | None = None

    def __post_init__(self):
        k = self.U.shape[-1]
        if not 1 <= self.escape_rank <= k:
            raise ValueError(f"escape_rank: got {self.escape_rank}; allowed: 1..{k} "
                             "(the teacher's rank)")
        if self.width < 1:
            raise ValueError(f"width: got {self.width}; allowed: an integer >= 1")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.S.shape)

    @property
    def saddle_point(self):
        m, n = self.shape
        return {"W1": jnp.zeros((self.width, n), self.S.dtype),
                "W2": jnp.zeros((m, self.width), self.S.dtype)}

    def value_and_grad_with_coordinates(self, W):
        W1, W2 = W["W1"], W["W2"]
        P = jnp.matmul(W2, W1, precision=_HI)
        if self.Sigma is None:  # the population loss
            value = tree_sum(P * (0.5 * P - self.S))
            G = P - self.S
        else:  # the empirical loss <P Sigma, P/2 - S>, gradient factor (P - S) Sigma
            PSigma = jnp.matmul(P, self.Sigma, precision=_HI)
            value = tree_sum(PSigma * (0.5 * P - self.S))
            G = PSigma - self.SSigma
        grad = {"W1": jnp.matmul(W2.T, G, precision=_HI),
                "W2": jnp.matmul(G, W1.T, precision=_HI)}
        return value, grad, self.direction_coordinates(W)

    def draw_inputs(self, gen, batch: int) -> jax.Array:
        """``batch`` inputs from a run's step generator, as rows: whitened x ~ N(0, I_n)
        (samples = 0, online), or rows of the data set picked uniformly with replacement."""
        if self.X is None:
            return gen.normal((batch, self.shape[1]), self.S.dtype)
        return pick_rows(gen, self.X, batch)

    def minibatch_gradient(self, W, X):
        """The gradient of 1/(2B) sum_b ||W2 W1 x_b - S x_b||^2 on the rows x_b of X (B, n):
        the full gradient with Sigma replaced by X^T X / B (unbiased for x ~ N(0, I), and for
        rows picked uniformly from the data set, whose mean X^T X / B is Sigma-hat)."""
        W1, W2 = W["W1"], W["W2"]
        R = jnp.matmul(jnp.matmul(W2, W1, precision=_HI) - self.S, X.T, precision=_HI)
        G = jnp.matmul(R, X, precision=_HI) / X.shape[0]  # (P - S) X^T X / B
        return {"W1": jnp.matmul(W2.T, G, precision=_HI),
                "W2": jnp.matmul(G, W1.T, precision=_HI)}

    def alignment(self, W) -> jax.Array:
        """u_1^T P v_1 / s_1 with P = W_2 W_1 and s_1 = u_1^T S v_1: the end-to-end map's
        strength along the first teacher mode, relative to the teacher's (0 at the origin,
        1 once the mode is learned), computed as (W_2^T u_1) . (W_1 v_1) in O(D)."""
        u, v = self.U[:, 0], self.V[:, 0]
        s1 = tree_sum(u * jnp.matmul(self.S, v, precision=_HI))
        left = jnp.matmul(W["W2"].T, u, precision=_HI)
        right = jnp.matmul(W["W1"], v, precision=_HI)
        return tree_sum(left * right) / s1

    def direction_coordinates(self, X):
        """<E_i, X> = (X1[0, :] . v_i + X2[:, 0] . u_i) / sqrt(2) for i < r."""
        r = self.escape_rank
        first = tree_sum(X["W1"][0][:, None] * self.V[:, :r], axis=0)
        second = tree_sum(X["W2"][:, 0][:, None] * self.U[:, :r], axis=0)
        return (first + second) * _INV_SQRT2

    def escape_direction(self, i: int):
        zero = self.saddle_point
        return {"W1": zero["W1"].at[0].set(self.V[:, i] * _INV_SQRT2),
                "W2": zero["W2"].at[:, 0].set(self.U[:, i] * _INV_SQRT2)}


# --------------------------------------------------------------------------------------
# The family's spec: its fields, its shared arrays and how the engine builds it.

_LS = "landscape"
_WIDTH_MAX = 2**20
_D_MAX = 2**31 - 1  # as for m * n in the core check
_FIELDS = (
    int_field("width", 16, "linear_network: hidden width h (W1 is h x n, W2 is m x h; "
              "D = h(m + n))", _LS, lo=1, hi=_WIDTH_MAX),
    int_field("teacher_rank", 1, "linear_network: rank k of the teacher S, in [1, min(m, n)]",
              _LS, lo=1),
    float_field("teacher_scale", 1.0, "linear_network: the teacher's largest singular value "
                "s_1 (escape eigenvalue -s_1)", _LS, lo=0, lo_open=True),
    float_field("teacher_decay", 0.5, "linear_network: singular value ratio, s_i = "
                "teacher_scale * teacher_decay^(i-1)", _LS, lo=0, hi=1, lo_open=True),
    SAMPLES,
)

# Independent NumPy streams for the teacher's two factors and the data set's inputs
# (distinct from the spectral family's, though nothing relies on that).
_STREAM_U, _STREAM_V, _STREAM_X = 11, 12, 13
_DATA_MAX = 2**27  # samples * n entries of the data set, held in memory (1 GiB in float64)

# The default loss criterion: escaped once the loss has fallen by this fraction of the
# first mode's depth s_1^2 / 2 (LinearNetworkSpec.normalize).
LOSS_DROP_FRACTION = 0.5


def _haar_columns(rng: np.random.Generator, size: int, k: int) -> np.ndarray:
    """k orthonormal columns, Haar on the Stiefel manifold (QR of a Gaussian, sign fix)."""
    Q, R = np.linalg.qr(rng.standard_normal((size, k)))
    return Q * np.sign(np.diag(R))


def singular_values(values) -> np.ndarray:
    """The teacher's singular values s_i = teacher_scale * teacher_decay^i, i < k."""
    k = values["teacher_rank"]
    return values["teacher_scale"] * values["teacher_decay"] ** np.arange(k, dtype=float)


def teacher_arrays(config) -> dict[str, np.ndarray]:
    """The float64 teacher of a config at unit scale: U (m, k), V (n, k) and
    S_unit = sum_i teacher_decay^i u_i v_i^T (the run scales it by teacher_scale)."""
    m, n, k = config.m, config.n, config.teacher_rank
    seed = int(config.landscape_seed)
    U = _haar_columns(np.random.default_rng([seed, _STREAM_U]), m, k)
    V = _haar_columns(np.random.default_rng([seed, _STREAM_V]), n, k)
    decay = config.teacher_decay ** np.arange(k, dtype=float)
    return dict(U=U, V=V, S_unit=(U * decay) @ V.T)


def data_arrays(config, S_unit: np.ndarray) -> dict[str, np.ndarray]:
    """The float64 data set of a config with samples = N > 0, drawn once from the landscape
    seed: X (N, n), Sigma = X^T X / N, SSigma_unit = S_unit Sigma, and the escape
    singular vectors U (m, k), V (n, k) of S_unit Sigma (the Hessian at the origin is
    +-svals(S Sigma), see the module docstring; teacher_scale > 0 leaves them unchanged)."""
    rng = np.random.default_rng([int(config.landscape_seed), _STREAM_X])
    X = draw_inputs_once(rng, config.samples, config.n)
    Sigma = (X.T @ X) / config.samples
    SSigma = S_unit @ Sigma
    U, _, Vt = np.linalg.svd(SSigma, full_matrices=False)
    k = config.teacher_rank
    return dict(X=X, Sigma=Sigma, SSigma_unit=SSigma, U=U[:, :k], V=Vt[:k].T)


@register
class LinearNetworkSpec(LandscapeSpec):
    name = "linear_network"
    summary = ("two-layer linear network 1/2 ||W2 W1 - S||^2 at the origin (population "
               "or empirical loss)")
    fields = _FIELDS
    # Core defaults while this family is chosen (saddle.config.core_defaults): start off the
    # saddle (at the origin every gradient and the minibatch noise vanish exactly), and
    # count an escape by the loss (the projection on the first hidden unit's modes
    # undercounts). loss_drop None is derived in normalize: LOSS_DROP_FRACTION * s_1^2 / 2.
    defaults = {"init": "random", "escape": "loss", "loss_drop": None}
    # teacher_scale only multiplies S, so runs that differ in it share one teacher draw.
    traced = ("teacher_scale",)
    # LinearNetworkSaddle.minibatch_gradient: online SGD on x ~ N(0, I) (samples = 0) or
    # minibatches picked from the data set.
    minibatch = True
    alignment = True  # LinearNetworkSaddle.alignment

    def normalize(self, values):
        """A loss_drop not given is LOSS_DROP_FRACTION of the first mode's depth s_1^2 / 2
        (s_1 = teacher_scale): the loss has fallen halfway down the first step, so the run
        has left the plateau at the origin (c = s_1 (1 - 1/sqrt 2) along one mode)."""
        if values["loss_drop"] is None:
            values["loss_drop"] = LOSS_DROP_FRACTION * 0.5 * values["teacher_scale"] ** 2

    def static_key(self, config) -> tuple:
        return (("shape", (config.m, config.n, config.width)), ("samples", config.samples))

    def shared_key(self, config) -> tuple:
        return (config.m, config.n, config.landscape_seed, config.teacher_rank,
                config.teacher_decay, config.samples)

    def shared_arrays(self, config):
        arrays = teacher_arrays(config)
        if config.samples:
            arrays.update(data_arrays(config, arrays["S_unit"]))
        return arrays

    def build(self, static, arrays, s, escape_rank):
        width = static["shape"][2]
        scale = s["teacher_scale"]
        data = {}
        if "X" in arrays:
            data = dict(X=arrays["X"], Sigma=arrays["Sigma"],
                        SSigma=scale * arrays["SSigma_unit"])
        return LinearNetworkSaddle(S=scale * arrays["S_unit"], U=arrays["U"], V=arrays["V"],
                                   width=width, escape_rank=escape_rank, **data)

    def dimension(self, config) -> int:
        return config.width * (config.m + config.n)

    def param_shapes(self, config) -> tuple[tuple[int, int], ...]:
        return ((config.width, config.n), (config.m, config.width))

    def minibatch_entry_std(self, config) -> float:
        """Per-entry std of the minibatch gradient noise at the random start (expected):
        sigma^2 = 2 (n + 1) eps^2 ||S||_F^2 / (B (m + n)); 0 for a start at the saddle.

        Derivation: with Z = X^T X / B - I, E[Z M Z] = (M^T + tr(M) I)/B for Gaussian rows,
        and at the start the noise is (-W_2^T S Z, -S Z W_1^T) with E W_1^T W_1 = h eps^2 I_n,
        E W_2 W_2^T = h eps^2 I_m: each leaf carries (n + 1) h eps^2 ||S||^2 / B, spread over
        D = h (m + n) entries (P = W_2 W_1, of order eps^2, neglected; the population loss:
        a finite data set's rows are not Gaussian draws)."""
        eps = config.init_scale or 0.0
        s = singular_values(config.to_dict())
        return math.sqrt(2 * (config.n + 1) * eps * eps * float(np.sum(s * s))
                         / (config.minibatch_size * (config.m + config.n)))

    def loss_depth(self, values) -> float:
        """1/2 sum_{i < min(h, k)} s_i^2: the best rank-h fit of S (f(W*) = 0)."""
        s = singular_values(values)[: values["width"]]
        return 0.5 * float(np.sum(s * s))

    def escape_loss_scale(self, config) -> float:
        """1/2 ||S||_F^2 = 1/2 sum_i s_i^2: the teacher's loss at the origin, which the
        shifted loss measures from (f(W*) = 0), and the whole drop learning could reach."""
        s = singular_values(config.to_dict())
        return 0.5 * float(np.sum(s * s))

    def curvature_scale(self, config) -> float:
        """s_1 = teacher_scale: the largest |Hessian eigenvalue| at the origin."""
        return config.teacher_scale

    def mean_squared_curvature(self, config) -> float:
        """The Hessian at the origin has +-s_i with multiplicity h each, 0 elsewhere."""
        s = singular_values(config.to_dict())
        return 2 * config.width * float(np.sum(s * s)) / self.dimension(config)

    def check(self, values):
        D = values["width"] * (values["m"] + values["n"])
        if D > _D_MAX:
            raise ConfigError("width", values["width"],
                              f"width * (m + n) <= {_D_MAX} (got D = {D})")
        k_max = min(values["m"], values["n"])
        if values["teacher_rank"] > k_max:
            raise ConfigError("teacher_rank", values["teacher_rank"],
                              f"an integer in [1, min(m, n)] = [1, {k_max}]")
        if values["escape_rank"] > values["teacher_rank"]:
            raise ConfigError("escape_rank", values["escape_rank"],
                              f"an integer in [1, teacher_rank] = [1, {values['teacher_rank']}]")
        self._check_samples(values)
        if values["escape"] == "loss" and not values["loss_drop"] < self.loss_depth(values):
            raise ConfigError("loss_drop", values["loss_drop"],
                              f"a number in (0, {self.loss_depth(values):.6g}): the depth "
                              "1/2 sum s_i^2 of the best fit of the teacher")

    @staticmethod
    def _check_samples(values):
        N = values["samples"]
        if N and N * values["n"] > _DATA_MAX:
            raise ConfigError("samples", N, f"samples * n <= {_DATA_MAX} (the data set is "
                              f"held in memory; got {N * values['n']})")
        if N and values["escape_rank"] > N:
            raise ConfigError("escape_rank", values["escape_rank"],
                              f"an integer in [1, samples] = [1, {N}] (S Sigma-hat has rank "
                              "at most samples)")
