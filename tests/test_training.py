"""The training page (docs/training.md) runs: its Python blocks, executed in order, train a
small MLP with every optimizer, and each lowers the loss by the factor the page states."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from saddle.registry import OPTIMIZERS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "training.md"
FACTOR = 20  # the page's promise: each optimizer lowers the loss at least 20-fold


def page_code() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(), flags=re.S | re.M)
    assert blocks, f"no Python block in {PAGE}"
    return "\n".join(blocks)


def test_the_training_page_states_the_factor_it_is_checked_against():
    assert f"at least {FACTOR}-fold" in PAGE.read_text()


def test_the_training_page_trains_an_mlp_with_every_optimizer():
    namespace: dict = {"__name__": "training_page"}
    exec(compile(page_code(), str(PAGE), "exec"), namespace)
    results = namespace["results"]
    assert set(results) == set(OPTIMIZERS.names())
    for name, losses in results.items():
        assert len(losses) == namespace["STEPS"] and np.all(np.isfinite(losses)), name
        assert losses[-1] * FACTOR < losses[0], (name, losses[0], losses[-1])
    # The page's model has biases: muon and mano ran their fallback on them.
    assert any(np.ndim(leaf) == 1 for leaf in namespace["init_mlp"](
        namespace["jax"].random.key(0))[0].values())
