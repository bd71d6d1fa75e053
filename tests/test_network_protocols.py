"""Matched learning-rate protocols on pytree parameters: nominal norms over a network's
leaves W1 (h, n) and W2 (m, h), checked against one measured update of each optimizer, and
SGD's minibatch noise scale against sampled minibatch gradients."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saddle import Config, ConfigError
from saddle.landscapes import make_landscape
from saddle.optimizers import from_config
from saddle.sweep import matched_lr, update_norms_per_lr

NET = dict(landscape="linear_network", m=12, n=20, width=48, teacher_rank=1, dtype="float64",
           init="random", init_scale=1e-3)


def _measured(c):
    """(RMS, Frobenius, largest leaf spectral norm) of one update at learning rate 1 on a
    dense random gradient pytree with the network's leaf shapes."""
    tx = from_config(c.replace(learning_rate=1.0))
    W = make_landscape(c).saddle_point
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    W = {"W1": W["W1"] + jax.random.normal(k3, W["W1"].shape, jnp.float64), "W2": W["W2"]}
    G = {"W1": jax.random.normal(k1, W["W1"].shape, jnp.float64),
         "W2": jax.random.normal(k2, W["W2"].shape, jnp.float64)}
    u, _ = tx.update(G, tx.init(W), W)
    leaves = [np.asarray(x) for x in jax.tree.leaves(u)]
    fro = math.sqrt(sum(float(np.sum(x * x)) for x in leaves))
    D = sum(x.size for x in leaves)
    return fro / math.sqrt(D), fro, max(np.linalg.norm(x, 2) for x in leaves)


@pytest.mark.parametrize("opt, kw, spectral_rel", [
    ("muon", dict(orthogonalizer="polar"), 1e-6), ("sign_descent", {}, 0.2),
    ("normalized_gd", {}, 0.2), ("mano", {}, 0.2)])
def test_network_norms_are_one_measured_update_over_the_leaves(opt, kw, spectral_rel):
    """Frobenius over both leaves exact (Muon polar per leaf with its own Keller scale, sign
    descent, normalized GD (each leaf to Frobenius 1), Mano's RMS 0.2 per leaf); the spectral
    norm of the larger leaf exact for Muon polar, within 20% (finite size) elsewhere."""
    c = Config.from_dict(**NET, optimizer=opt, **kw)
    t = update_norms_per_lr(c)
    rms, fro, spectral = _measured(c)
    assert fro == pytest.approx(t["frobenius"], rel=1e-6)
    assert rms == pytest.approx(t["rms"], rel=1e-6)
    assert spectral == pytest.approx(t["spectral"], rel=spectral_rel)


def test_muon_network_table_by_hand():
    """W1 (48, 20): Keller scale sqrt(48/20), 20 unit singular values; W2 (12, 48): scale 1,
    12 of them. D = 48 * 32."""
    c = Config.from_dict(**NET, optimizer="muon")
    t = update_norms_per_lr(c)
    s1 = math.sqrt(48 / 20)
    fro = math.sqrt(s1 * s1 * 20 + 12)
    assert t["frobenius"] == pytest.approx(fro, rel=1e-12)
    assert t["rms"] == pytest.approx(fro / math.sqrt(48 * 32), rel=1e-12)
    assert t["spectral"] == pytest.approx(s1, rel=1e-12)


def test_sgd_minibatch_scale_matches_sampled_minibatch_gradients():
    """SGD's nominal RMS on a minibatch-noise network is the RMS of the stochastic gradient
    at the random start, sqrt(eps^2 lambda2 + sigma_mb^2): measured over 200 draws of the
    start and the batch, within 5%."""
    c = Config.from_dict(**NET, optimizer="sgd", noise="minibatch", minibatch_size=8,
                         teacher_scale=1.3)
    L = make_landscape(c)
    eps, B = c.init_scale, c.minibatch_size

    def sample(key):
        k1, k2, k3 = jax.random.split(key, 3)
        W = {"W1": eps * jax.random.normal(k1, (c.width, c.n), jnp.float64),
             "W2": eps * jax.random.normal(k2, (c.m, c.width), jnp.float64)}
        X = jax.random.normal(k3, (B, c.n), jnp.float64)
        g = L.minibatch_gradient(W, X)
        return sum(jnp.sum(x * x) for x in jax.tree.leaves(g))

    sq = jax.vmap(sample)(jax.random.split(jax.random.key(1), 200))
    measured = math.sqrt(float(jnp.mean(sq)) / c.D)
    assert update_norms_per_lr(c)["rms"] == pytest.approx(measured, rel=0.05)
    assert matched_lr(c, "rms", 2e-4) == pytest.approx(2e-4 / measured, rel=0.05)


def test_sgd_minibatch_without_a_derived_scale_is_refused():
    c = Config.from_dict(landscape="teacher_student", m=1, n=8, width=4, optimizer="sgd",
                         noise="minibatch")
    with pytest.raises(ConfigError, match="^noise: got 'minibatch'; allowed: .*SGD"):
        update_norms_per_lr(c)
