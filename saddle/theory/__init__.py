"""Theory of the saddle lab: symbolic escape bounds, their assumptions, and resolvent numerics.

Every result is a :class:`theory.Result` (sympy expression, checkable assumptions,
lambdified numeric form, LaTeX). ``RESULTS`` maps names to results; ``applicable(config)``
lists those about a config's optimizer (or about no optimizer in particular).

Derivations: ``docs/theory/``. CLI: ``saddle bounds``.
"""

from __future__ import annotations

from ._core import KINDS, QUANTITIES, Assumption, Result
from .adamw import ADAMW_ESCAPE, ADAMW_STABILITY_LR
from .adamw_incoherent import ADAMW_INCOHERENT, ADAMW_INCOHERENT_CLT
from .diffusive import ADAMW_DIFFUSIVE, DIFFUSIVE_EXPONENTS, MUON_DIFFUSIVE, SGD_DIFFUSIVE
from .mano import MANO_CLOCK_ESTIMATE, MANO_NORM_CLOCK
from .muon import MUON_BALLISTIC, MUON_NS_TOTAL, MUON_TOTAL, certify
from .muon_noise_start import MUON_NOISE_START, NOISE_START_EXPONENTS
from .network import NETWORK_GD_ESCAPE
from .newton_schulz import NS_MIN_INPUT, NS_RANGE
from .noise_clt import ADAMW_CLT, SGD_CLT
from .ns_excitation import NS_BULK_SATURATION, NS_BULK_THRESHOLD
from .polar import POLAR_ALIGNMENT, POLAR_ALIGNMENT_RANK_R
from .quartic import (
    QUARTIC_ADAMW_ESCAPE,
    QUARTIC_BULK_SPREAD,
    QUARTIC_CLIFF,
    QUARTIC_SGD_ESCAPE,
)
from .rank import MUON_RANK_SPEED_LIMIT, SGD_RANK_MEAN
from .sgd import SGD_MEAN, SGD_SD
from .sgd_passage import SGD_PASSAGE
from .speed_limit import ADAMW_SPEED_LIMIT
from .spiked import BBP_THRESHOLD, D_EXPONENT, OVERLAP_LEFT, OVERLAP_RIGHT
from .stiff_bulk import BULK_AMPLITUDE, MUON_STIFF_BULK

__all__ = ["Result", "Assumption", "RESULTS", "applicable", "KINDS", "QUANTITIES", "certify"]

RESULTS: dict[str, Result] = {
    r.name: r
    for r in (
        POLAR_ALIGNMENT,
        POLAR_ALIGNMENT_RANK_R,
        NS_RANGE,
        NS_MIN_INPUT,
        MUON_BALLISTIC,
        MUON_TOTAL,
        MUON_NS_TOTAL,
        MUON_STIFF_BULK,
        BULK_AMPLITUDE,
        NS_BULK_THRESHOLD,
        NS_BULK_SATURATION,
        BBP_THRESHOLD,
        OVERLAP_LEFT,
        OVERLAP_RIGHT,
        D_EXPONENT,
        SGD_MEAN,
        SGD_SD,
        SGD_CLT,
        SGD_PASSAGE,
        ADAMW_ESCAPE,
        ADAMW_STABILITY_LR,
        ADAMW_INCOHERENT,
        ADAMW_INCOHERENT_CLT,
        ADAMW_CLT,
        SGD_DIFFUSIVE,
        ADAMW_DIFFUSIVE,
        MUON_DIFFUSIVE,
        *DIFFUSIVE_EXPONENTS,
        MANO_NORM_CLOCK,
        MANO_CLOCK_ESTIMATE,
        NETWORK_GD_ESCAPE,
        SGD_RANK_MEAN,
        MUON_RANK_SPEED_LIMIT,
        ADAMW_SPEED_LIMIT,
        MUON_NOISE_START,
        *NOISE_START_EXPONENTS,
        QUARTIC_SGD_ESCAPE,
        QUARTIC_ADAMW_ESCAPE,
        QUARTIC_BULK_SPREAD,
        QUARTIC_CLIFF,
    )
}

# Results that only make sense on a trajectory state (no config-level value).
STATE_ONLY = ("polar_alignment_rank_r",)


def applicable(config) -> list[Result]:
    """The results relevant to a config: those about its optimizer or about none."""
    return [r for r in RESULTS.values() if r.applies_to(config) and r.name not in STATE_ONLY]
