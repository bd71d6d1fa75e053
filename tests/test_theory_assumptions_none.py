"""An assumption that reads a field which does not apply (None) does not hold."""

from saddle import Config
from saddle.theory import sgd


def test_a_loss_criterion_config_fails_the_radius_assumptions_instead_of_raising():
    c = Config.from_dict(dict(optimizer="sgd", escape="loss", loss_drop=0.01))
    assert c.radius is None
    held = {a.name: a.holds(c) for a in sgd.SGD_MEAN.assumptions}
    assert held["projection"] is False and held["far_radius"] is False
