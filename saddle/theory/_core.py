"""Results as data: a sympy expression, its assumptions, a numeric form and a LaTeX rendering.

Every theory result of the lab is one :class:`Result`. The same object feeds the docs
(``docs/theory/_generate.py`` writes its LaTeX), the CLI (``saddle bounds`` prints its value
and whether its assumptions hold), plot overlays and the tests (which compare
:meth:`Result.evaluate` with simulations).

A result's numeric value is always ``numeric(**params(config))``: ``params`` reduces a config
to the values of the expression's symbols (some of them, such as a certified per-step
progress, come from a short numerical computation documented with the result), and
``numeric`` is the lambdified expression. So the number the CLI prints and the formula the
docs show cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sympy as sp

from ..landscapes.spectral import SpectralSpec

SPECTRAL = SpectralSpec.name
__all__ = ["Assumption", "Result", "KINDS", "QUANTITIES", "relation_symbol", "psi", "psi1"]

# Display-friendly special functions: sympy prints digamma as polygamma(0, x); these print as
# psi(x) and psi_1(x) and lambdify to SciPy's digamma and trigamma.
psi = sp.Function("psi")
psi1 = sp.Function("psi_1")


def _trigamma(x):
    import scipy.special

    return scipy.special.polygamma(1, x)


def _digamma(x):
    import scipy.special

    return scipy.special.digamma(x)


FUNCTIONS = {"psi": _digamma, "psi_1": _trigamma}

KINDS = ("upper", "lower", "estimate")
QUANTITIES = (
    "escape_time",
    "escape_time_sd",
    "alignment",
    "ns_output",
    "ns_input",
    "signal_threshold",
    "overlap",
    "dimension_exponent",
    "learning_rate",
    "bulk_amplitude",
    "bulk_curvature",
    "bulk_spread",  # ||X_perp||_F^2, the orthogonal (bulk) displacement squared
    "critical_quartic",  # the largest quartic cap kappa at which escape is possible
)


@dataclass(frozen=True)
class Assumption:
    """One hypothesis of a result, as a checkable predicate.

    Attributes:
        name: a short identifier (``rank_one``, ``gap``, ...).
        description: one line, in words and symbols, of what is assumed.
        check: the predicate. ``on="config"``: ``check(config) -> bool``. ``on="state"``:
            ``check(state) -> bool`` for a trajectory state (a mapping with the per-step
            quantities named in the description, see :mod:`theory.diagnostics`).
        on: ``"config"`` or ``"state"``.
    """

    name: str
    description: str
    check: Callable[[Any], bool]
    on: str = "config"

    def __post_init__(self):
        if self.on not in ("config", "state"):
            raise ValueError(f"Assumption.on: got {self.on!r}; allowed: config, state")

    def holds(self, obj: Any) -> bool:
        try:
            return bool(self.check(obj))
        # TypeError: the check read a field that does not apply to this config (None, e.g.
        # radius under the loss criterion), so the assumption cannot hold.
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return False


def relation_symbol(kind: str) -> str:
    return {"upper": r"\le", "lower": r"\ge", "estimate": r"\approx"}[kind]


@dataclass(frozen=True, eq=False)
class Result:
    """A theory result: ``lhs  (<=, >= or ~)  expr``, with assumptions and a numeric form.

    Attributes:
        name: registry key, e.g. ``muon_speed_limit``.
        title: a human title.
        quantity: what the value measures (one of :data:`QUANTITIES`); escape times are in
            optimizer steps.
        kind: ``upper``, ``lower`` or ``estimate`` (``lhs <= expr``, ``lhs >= expr``,
            ``lhs ~ expr``).
        optimizer: the optimizer the result is about, or None for a general fact.
        lhs: the sympy expression on the left (e.g. the escape time tau).
        expr: the sympy expression on the right: the formula, as the docs show it. It may
            use derived symbols (such as rho) defined in ``definitions``.
        assumptions: config-level and state-level hypotheses.
        params: config -> {symbol name: value}; raises ValueError when the config lacks
            what the formula needs (then the value is None).
        page: the docs page (``docs/theory/<page>.md``) with the derivation.
        d_dependence: one line on where the dimension D = mn enters, if anywhere.
        definitions: ``(symbol, expression)`` pairs for the derived symbols of ``expr``
            (e.g. rho = nu / (s - nu)); the docs print them under the formula and the numeric
            form substitutes them, last first.
        post: optional map applied to the lambdified value (e.g. ceiling for step counts).
        landscape: the landscape family the result is about (the spectral saddle unless
            stated; e.g. ``linear_network`` for the network saddle's own laws).
    """

    name: str
    title: str
    quantity: str
    kind: str
    optimizer: str | None
    lhs: sp.Expr | str  # a string is LaTeX, used verbatim
    expr: sp.Expr
    assumptions: tuple[Assumption, ...]
    params: Callable[[Any], dict[str, float]]
    page: str
    d_dependence: str
    definitions: tuple[tuple[sp.Expr, sp.Expr], ...] = ()
    post: Callable[[float], float] | None = None
    summary: str = ""
    extra: dict = field(default_factory=dict)
    landscape: str = SPECTRAL

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind: got {self.kind!r}; allowed: {', '.join(KINDS)}")
        if self.quantity not in QUANTITIES:
            raise ValueError(f"quantity: got {self.quantity!r}; allowed: {', '.join(QUANTITIES)}")
        _ = self.full_expr  # substitutes the definitions; fails early on a bad one

    @cached_property
    def full_expr(self) -> sp.Expr:
        """``expr`` with every derived symbol replaced by its definition."""
        out = self.expr
        for sym, definition in reversed(self.definitions):
            out = out.subs(sym, definition)
        return out

    @cached_property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        """The base symbols the numeric form takes, sorted by name."""
        return tuple(sorted(self.full_expr.free_symbols, key=lambda s: s.name))

    # --- renderings -----------------------------------------------------------------------
    @property
    def latex(self) -> str:
        """``lhs rel expr`` as LaTeX (no surrounding ``$$``)."""
        lhs = self.lhs if isinstance(self.lhs, str) else sp.latex(self.lhs)
        return f"{lhs} {relation_symbol(self.kind)} {sp.latex(self.expr)}"

    def definition_latex(self) -> list[str]:
        return [f"{sp.latex(a)} = {sp.latex(b)}" for a, b in self.definitions]

    @cached_property
    def numeric(self) -> Callable[..., float]:
        """The lambdified expression (NumPy, SciPy special functions allowed)."""
        return sp.lambdify(self.symbols, self.full_expr, modules=[FUNCTIONS, "scipy", "numpy"])

    # --- evaluation -----------------------------------------------------------------------
    def symbol_values(self, config) -> dict[str, float]:
        return self.params(config)

    def evaluate(self, config) -> float | None:
        """The result's number for a config (None when the formula does not apply).

        Cheap and pure: the same config always gives the same number.
        """
        try:
            vals = self.params(config)
        except ValueError:
            return None
        args = [vals[s.name] for s in self.symbols]
        if any(v is None for v in args):
            return None
        try:
            out = float(self.numeric(*args))
        except (ZeroDivisionError, OverflowError, FloatingPointError):
            return None  # e.g. a noise-free config where the formula divides by sigma
        if self.post is not None and math.isfinite(out):
            out = float(self.post(out))
        return out if math.isfinite(out) else None

    def check(self, config) -> list[tuple[Assumption, bool]]:
        """Each config-level assumption with whether it holds for ``config``."""
        return [(a, a.holds(config)) for a in self.assumptions if a.on == "config"]

    def assumptions_hold(self, config, skip: tuple[str, ...] = ()) -> bool:
        """Whether every config-level assumption (except those named in ``skip``) holds;
        stops at the first that fails, so a cheap failing check spares the costly ones."""
        return all(a.holds(config) for a in self.assumptions
                   if a.on == "config" and a.name not in skip)

    def state_assumptions(self) -> list[Assumption]:
        return [a for a in self.assumptions if a.on == "state"]

    def applies_to(self, config) -> bool:
        """True when the result is about this config's landscape family (``landscape``: the
        spectral saddle unless stated) and optimizer (or about none)."""
        if config.landscape != self.landscape:
            return False
        return self.optimizer is None or self.optimizer == config.optimizer

    def as_dict(self, config) -> dict:
        """The JSON object ``saddle bounds --json`` prints for this result."""
        checks = self.check(config)
        return dict(
            name=self.name,
            quantity=self.quantity,
            kind=self.kind,
            optimizer=self.optimizer,
            latex=self.latex,
            assumptions_hold=all(ok for _, ok in checks),
            value=self.evaluate(config),
            title=self.title,
            assumptions=[
                dict(name=a.name, description=a.description, holds=ok) for a, ok in checks
            ],
            trajectory_assumptions=[a.description for a in self.state_assumptions()],
            d_dependence=self.d_dependence,
        )


def symbols(names: str, **kw) -> Sequence[sp.Symbol]:
    """sympy.symbols, positive by default."""
    kw.setdefault("positive", True)
    return sp.symbols(names, **kw)
