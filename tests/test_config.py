"""Config validation, normalization and hashing."""

import math

import pytest

from saddle import Config, ConfigError
from saddle.config import FIELDS
from saddle.registry import OPTIMIZERS


def test_defaults_are_valid_and_fill_optimizer_defaults():
    for spec in OPTIMIZERS:
        c = Config.from_dict(optimizer=spec.name)
        for k, v in spec.defaults.items():
            if v is not None:
                assert getattr(c, k) == v, (spec.name, k)
    assert Config.from_dict(optimizer="mano").nesterov is False
    assert Config.from_dict(optimizer="mano", variant="v2").nesterov is True


def test_non_applicable_fields_normalize_to_none_and_do_not_change_the_hash():
    a = Config.from_dict(optimizer="adamw")
    b = Config.from_dict(optimizer="adamw", ns_steps=3, momentum=0.5, noise_df=7)
    assert b.ns_steps is None and b.momentum is None and b.noise_df is None
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != Config.from_dict(optimizer="adamw", learning_rate=2e-3).config_hash()
    # Seeds do not enter the condition hash, but they enter the run key.
    c = Config.from_dict(optimizer="adamw", seed=5, seeds=3)
    assert c.config_hash() == a.config_hash()
    assert a.run_key(0) != a.run_key(1)


def test_explicit_default_equals_implicit_default():
    assert (
        Config.from_dict(optimizer="muon").config_hash()
        == Config.from_dict(optimizer="muon", learning_rate=0.02, ns_steps=5).config_hash()
    )


def test_strings_from_the_command_line_are_coerced():
    c = Config.from_dict(m="32", n="16", learning_rate="1e-2", nesterov="false", optimizer="sgd",
                         momentum="0.9")
    assert (c.m, c.n, c.learning_rate, c.nesterov, c.momentum) == (32, 16, 0.01, False, 0.9)
    assert Config.from_dict(m=32.0).m == 32


@pytest.mark.parametrize(
    "field, value",
    [
        ("m", 0), ("m", -3), ("m", 2.5), ("m", "abc"), ("m", True), ("n", -1),
        ("learning_rate", -1.0), ("learning_rate", math.nan), ("learning_rate", math.inf),
        ("sigma", -0.1), ("momentum", 1.0), ("momentum", -0.1), ("radius", 0.0),
        ("optimizer", "adam"), ("noise", "gaussian"), ("bulk", "wigner"), ("escape", "time"),
        ("dtype", "float16"), ("basis", 3), ("max_steps", 0), ("seeds", 0), ("b2", 1.0),
    ],
)
def test_bad_values_name_the_field(field, value):
    if value is None:
        return
    with pytest.raises(ConfigError) as e:
        Config.from_dict({field: value})
    assert e.value.field == field
    assert str(e.value).startswith(f"{field}: got")
    assert "allowed" in str(e.value)


def test_unknown_key_suggests_the_nearest_field():
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        Config.from_dict(learning_rte=0.1)
    with pytest.raises(ConfigError, match="did you mean 'adamw'"):
        Config.from_dict(optimizer="adamW")


def test_cross_field_checks():
    with pytest.raises(ConfigError, match=r"escape_rank.*\[1, 4\]"):
        Config.from_dict(m=4, n=9, escape_rank=5)
    with pytest.raises(ConfigError, match="noise_rank"):
        Config.from_dict(m=4, n=9, noise="lowrank", noise_rank=5)
    # The loss criterion needs a drop the landscape can deliver: gamma^2/(4 kappa).
    with pytest.raises(ConfigError, match="loss_drop"):
        Config.from_dict(escape="loss", gamma=0.2, quartic=1.0, loss_drop=0.011)
    Config.from_dict(escape="loss", gamma=0.2, quartic=1.0, loss_drop=0.009)
    with pytest.raises(ConfigError, match="loss_drop"):
        Config.from_dict(escape="loss", gamma=0.0)


def test_replace_revalidates_and_redefaults_optimizer_fields():
    c = Config.from_dict(optimizer="muon")
    d = c.replace(optimizer="adamw")
    assert d.learning_rate == 1e-3 and d.ns_steps is None
    with pytest.raises(ConfigError):
        c.replace(m=-1)


def test_every_field_has_help_and_a_group():
    for spec in FIELDS.values():
        assert spec.help and spec.group
