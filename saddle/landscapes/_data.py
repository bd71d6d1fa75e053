"""Finite data sets of the network landscapes: ``samples`` inputs drawn once per landscape
seed, and the rows a minibatch picks from them.

``samples = 0`` means no data set: the landscape is the population loss, and a minibatch
draws fresh inputs every step (online SGD). With ``samples = N > 0`` the landscape is the
empirical loss on those N inputs, and a minibatch picks B of them uniformly with
replacement from the run's noise stream.
"""

from __future__ import annotations

import numpy as np

from ..fields import int_field

__all__ = ["SAMPLES", "draw_inputs_once", "pick_rows"]

SAMPLES = int_field("samples", 0, "network landscapes: size N of the data set drawn once per "
                    "landscape seed (the loss is the empirical loss on it, minibatches pick "
                    "from it); 0: the population loss, minibatches of fresh inputs (online)",
                    "landscape", lo=0, hi=2**24)


def draw_inputs_once(rng: np.random.Generator, samples: int, n: int) -> np.ndarray:
    """The data set's inputs, (samples, n) rows x ~ N(0, I_n), from the landscape's own
    generator (so the data depend on landscape_seed alone, never on a run's seed)."""
    return rng.standard_normal((samples, n))


def pick_rows(gen, data, batch: int):
    """``batch`` rows of ``data`` (N, n), uniform with replacement, from a run's step
    generator."""
    idx = gen.integers(data.shape[0], (batch,))
    return data[idx]
