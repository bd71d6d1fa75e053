"""Adding a component is one class: a toy optimizer, a toy noise model and a toy landscape
(with a two-matrix parameter pytree), each registered from here, run through
``saddle.simulate`` and through the CLI's config path, with no edit to the library."""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from saddle import Config, ConfigError, cli
from saddle.fields import float_field
from saddle.landscapes import AbstractLandscape, LandscapeSpec
from saddle.noise import ScaledNoise
from saddle.optimizers import LEARNING_RATE, OptimizerSpec
from saddle.reduce import tree_sum
from saddle.registry import LANDSCAPES, NOISES, OPTIMIZERS
from saddle.simulate import simulate

# --- a toy optimizer: scaled sign descent ---------------------------------------------------
TOY_GAIN = float_field("toy_gain", 1.0, "toy_sign: step multiplier", "optimizer", lo=0,
                       lo_open=True)


def _toy_sign_update(lr, gain):
    def init(params):
        return optax.EmptyState()

    def update(grads, state, params=None):
        return jax.tree.map(lambda g: -(lr * gain) * jnp.sign(g), grads), state

    return optax.GradientTransformation(init, update)


class ToySignSpec(OptimizerSpec):
    name = "toy_sign"
    summary = "sign descent times a gain"
    fields = (LEARNING_RATE, TOY_GAIN)
    defaults = dict(learning_rate=0.01, toy_gain=2.0)
    traced = ("learning_rate", "toy_gain")

    def build(self, static, s):
        return _toy_sign_update(s["learning_rate"], s["toy_gain"])

    def update_rms_per_lr(self, config):
        return config.toy_gain


# --- a toy noise model: Rademacher signs ------------------------------------------------------
class RademacherNoise(ScaledNoise):
    name = "toy_rademacher"
    summary = "sigma times random signs"

    def sample(self, model, gen, shape, dtype):
        return model.scalars["sigma"].astype(dtype) * jnp.sign(gen.normal(shape, dtype))

    def typical_spectral_norm(self, f):
        return f.sigma * (np.sqrt(f.m) + np.sqrt(f.n))


# --- a toy landscape: a saddle on a pair of matrices ------------------------------------------
@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PairSaddle(AbstractLandscape):
    """f(A, B) = -gamma/2 A_00^2 + lam/2 (||A||^2 - A_00^2 + ||B||^2): W = {"A": (m, n),
    "B": (n, m)}, the escape direction is A's (0, 0) entry."""

    gamma: jax.Array
    lam: jax.Array
    m: int = field(metadata=dict(static=True))
    n: int = field(metadata=dict(static=True))
    escape_rank: int = field(default=1, metadata=dict(static=True))

    @property
    def saddle_point(self):
        return {"A": jnp.zeros((self.m, self.n), self.gamma.dtype),
                "B": jnp.zeros((self.n, self.m), self.gamma.dtype)}

    def escape_direction(self, i):
        e = self.saddle_point
        return {"A": e["A"].at[0, 0].set(1), "B": e["B"]}

    def direction_coordinates(self, X):
        return X["A"][0, 0][None]

    def value_and_grad_with_coordinates(self, W):
        A, B = W["A"], W["B"]
        a = A[0, 0]
        rest = tree_sum(A * A) - a * a + tree_sum(B * B)
        f = -0.5 * self.gamma * a * a + 0.5 * self.lam * rest
        gA = (self.lam * A).at[0, 0].set(-self.gamma * a)
        return f, {"A": gA, "B": self.lam * B}, a[None]


TOY_LAM = float_field("toy_lam", 1.0, "pair: curvature of the other directions", "landscape",
                      lo=0)


class PairSpec(LandscapeSpec):
    name = "toy_pair"
    summary = "a saddle on two matrices"
    fields = (float_field("toy_gamma", 0.1, "pair: escape curvature", "landscape", lo=0),
              TOY_LAM)
    traced = ("toy_gamma", "toy_lam")

    def build(self, static, arrays, s, escape_rank):
        m, n = static["shape"]
        return PairSaddle(gamma=s["toy_gamma"], lam=s["toy_lam"], m=m, n=n)

    def static_key(self, config):
        return (("shape", (config.m, config.n)),)

    def dimension(self, config):
        return 2 * config.m * config.n


@pytest.fixture
def toys():
    specs = [(OPTIMIZERS, ToySignSpec()), (NOISES, RademacherNoise()), (LANDSCAPES, PairSpec())]
    for reg, spec in specs:
        reg.register(spec)
    yield
    for reg, spec in specs:
        reg.unregister(spec.name)


def test_registering_a_component_leaves_existing_hashes_unchanged():
    before = Config.from_dict(optimizer="adamw", noise="opnorm").config_hash()
    spec = ToySignSpec()
    OPTIMIZERS.register(spec)
    try:
        assert Config.from_dict(optimizer="adamw", noise="opnorm").config_hash() == before
    finally:
        OPTIMIZERS.unregister(spec.name)


def test_registered_components_validate_and_normalize(toys):
    c = Config.from_dict(optimizer="toy_sign", noise="toy_rademacher", landscape="toy_pair",
                         m=4, n=3)
    assert c.toy_gain == 2.0 and c.learning_rate == 0.01 and c.D == 24
    assert c.b1 is None and c.gamma is None and c.noise_df is None  # other components' fields
    with pytest.raises(ConfigError, match="toy_gain"):
        Config.from_dict(optimizer="toy_sign", toy_gain=-1)
    with pytest.raises(ConfigError, match="did you mean 'toy_sign'"):
        Config.from_dict(optimizer="toy_sig")
    # A field of an unchosen component does not enter the hash.
    assert (Config.from_dict(optimizer="adamw", toy_gain=5).config_hash()
            == Config.from_dict(optimizer="adamw").config_hash())


def test_toy_components_run_through_simulate(toys):
    c = Config.from_dict(optimizer="toy_sign", noise="toy_rademacher", landscape="toy_pair",
                         m=4, n=3, toy_gamma=0.5, sigma=1e-3, learning_rate=0.05, seeds=3,
                         max_steps=400, radius=1.0)
    res = simulate(c, trace_stride=1)
    assert all(r.escaped for r in res.runs)
    # Sign steps of lr * gain = 0.1 on the escape coordinate: |a_t| = 0.1 t until escape.
    assert [r.escape_time for r in res.runs] == [10, 10, 10]
    a = np.abs(res.traces[0]["escape_coordinates"][:, 0])
    np.testing.assert_allclose(a[:5], 0.1 * np.arange(5), atol=1e-6)
    # Both matrices move: every entry takes a sign step each iteration.
    drift = res.traces[0]["orthogonal_drift"]
    np.testing.assert_allclose(drift[1], 0.1 * np.sqrt(2 * 12 - 1), rtol=1e-5)
    # The same seeds give the same results; another noise scale changes nothing in escape
    # time (sign steps) but the draws differ per seed.
    again = simulate(c)
    assert [r.final_loss for r in again.runs] == [r.final_loss for r in res.runs]


def test_builtin_optimizer_runs_on_the_toy_pytree_landscape(toys):
    c = Config.from_dict(optimizer="muon", landscape="toy_pair", noise="isotropic", m=6, n=4,
                         toy_gamma=0.5, sigma=1e-3, seeds=2, max_steps=500)
    res = simulate(c)
    assert all(r.escaped for r in res.runs), [r.status for r in res.runs]


def test_toy_components_through_the_cli_config_path(toys, tmp_path, capsys):
    toml = tmp_path / "toy.toml"
    toml.write_text('optimizer = "toy_sign"\nnoise = "toy_rademacher"\nlandscape = "toy_pair"\n'
                    "m = 4\nn = 3\ntoy_gamma = 0.5\nsigma = 0.001\nlearning_rate = 0.05\n"
                    "seeds = 2\nmax_steps = 300\n")
    assert cli.main(["run", "--config", str(toml), "--toy-gain", "1", "--json", "--quiet"]) == 0
    out = capsys.readouterr().out
    import json

    d = json.loads(out)
    assert d["config"]["toy_gain"] == 1.0
    assert [r["escape_time"] for r in d["runs"]] == [20, 20]
