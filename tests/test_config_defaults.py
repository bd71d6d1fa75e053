"""Components' defaults for core fields (``Component.defaults`` naming a core field, e.g. the
linear network's ``init = "random"``): applied only when the user did not give the field,
before the conditional nulling of core fields, re-defaulted by ``replace``, and inert for
every config that does not choose the component (existing hashes unchanged)."""

from __future__ import annotations

import pytest

from saddle import Config
from saddle.config import core_defaults
from saddle.landscapes._spec import LandscapeSpec
from saddle.landscapes.linear_network import LOSS_DROP_FRACTION
from saddle.registry import LANDSCAPES

LN = dict(landscape="linear_network", m=6, n=5, width=4)
SPECTRAL = [{}, dict(basis="coherent", gamma=0.0, noise="opnorm"),
            dict(optimizer="adamw", escape="loss", init="random", m=8, n=4),
            dict(optimizer="mano", init_scale=0.5, radius=2.0, loss_drop=0.3)]


class _CoreDefaultsSpec(LandscapeSpec):
    name = "toy_core_defaults"
    defaults = {"init": "random", "escape": "loss", "loss_drop": 0.125, "max_steps": 77}


@pytest.fixture
def toy():
    spec = _CoreDefaultsSpec()
    LANDSCAPES.register(spec)
    try:
        yield spec
    finally:
        LANDSCAPES.unregister(spec.name)


def test_linear_network_core_defaults_apply_only_when_not_given():
    c = Config.from_dict(**LN)
    assert (c.init, c.init_scale, c.escape, c.radius) == ("random", 0.01, "loss", None)
    assert c.loss_drop == LOSS_DROP_FRACTION * 0.5 * 1.0**2 == 0.25
    # loss_drop is derived from teacher_scale in the spec's normalize hook: s_1^2 / 4
    assert Config.from_dict(**LN, teacher_scale=3.0).loss_drop == 0.25 * 9.0
    given = Config.from_dict(**LN, init="saddle", escape="projection", teacher_scale=3.0)
    assert (given.init, given.init_scale, given.escape) == ("saddle", None, "projection")
    assert (given.radius, given.loss_drop) == (1.0, None)  # nulled after the defaults
    assert Config.from_dict(**LN, loss_drop=0.1).loss_drop == 0.1
    # strings from the command line are coerced like the user's own values
    assert Config.from_dict(**LN, loss_drop="0.1").loss_drop == 0.1
    # giving the default explicitly is the same condition
    explicit = Config.from_dict(**LN, init="random", escape="loss", loss_drop=0.25)
    assert explicit.config_hash() == c.config_hash()
    assert core_defaults(LANDSCAPES["linear_network"]) == \
        {"init": "random", "escape": "loss", "loss_drop": None}
    assert core_defaults(LANDSCAPES["spectral"]) == {}


def test_registering_core_defaults_leaves_other_configs_unchanged(toy):
    before = {i: Config.from_dict(d) for i, d in enumerate(SPECTRAL)}
    LANDSCAPES.unregister(toy.name)
    try:
        alone = {i: Config.from_dict(d) for i, d in enumerate(SPECTRAL)}
    finally:
        LANDSCAPES.register(toy)
    for i in before:
        assert before[i] == alone[i]
        assert before[i].config_hash() == alone[i].config_hash()
    d = Config.from_dict({})
    assert (d.init, d.escape, d.radius, d.loss_drop, d.max_steps) == \
        ("saddle", "projection", 1.0, None, 10000)
    t = Config.from_dict(landscape=toy.name)
    assert (t.init, t.escape, t.radius, t.loss_drop, t.max_steps) == \
        ("random", "loss", None, 0.125, 77)
    assert Config.from_dict(landscape=toy.name, max_steps=5, init="saddle").max_steps == 5


def test_defaults_must_name_own_or_core_fields(toy):
    for bad in ({"noise": "none"}, {"no_such_field": 1}):
        toy.defaults = bad  # instance attribute: the class keeps its own
        with pytest.raises(TypeError, match="neither its own fields nor core fields"):
            Config.from_dict(landscape=toy.name)


def test_replace_redefaults_core_defaults():
    c = Config.from_dict(**LN)
    assert c.replace(teacher_scale=2.0).loss_drop == 1.0  # re-derived
    assert c.replace(seed=3).loss_drop == 0.25
    back = c.replace(landscape="spectral")
    assert (back.init, back.escape, back.radius, back.loss_drop) == \
        ("saddle", "projection", 1.0, None)
    assert back.config_hash() == Config.from_dict(m=6, n=5).config_hash()
    # values that differ from the component's default are the user's and stay
    own = Config.from_dict(**LN, init="saddle", loss_drop=0.1)
    moved = own.replace(teacher_scale=2.0)
    assert (moved.init, moved.loss_drop) == ("saddle", 0.1)
    assert own.replace(landscape="spectral").init == "saddle"
