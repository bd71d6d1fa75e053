"""``saddle bounds``: every theory result that applies to a config, with its value."""

from __future__ import annotations

import argparse

from ._common import (
    add_config_arguments,
    config_from_args,
    optimizer_defaults_epilog,
    print_json,
    start_numerics,
)

# For a failing assumption (by name), the flags of the nearest config where it holds. Only
# assumptions one or two flags can satisfy are listed; the rest get no hint.
FIXES = {
    "rank_one": "--escape-rank 1",
    "no_quartic": "--quartic 0",
    "constant_bulk": "--bulk constant",
    "saddle_init": "--init saddle --init-escape 0.05",
    "no_decay": "--weight-decay 0",
    "projection": "--escape projection",
    "sub_gaussian": "--noise isotropic",
    "gaussian": "--noise isotropic",
    "iid_noise": "--noise isotropic",
    "noisy": "--noise isotropic --sigma 0.01",
    "polar": "--orthogonalizer polar",
    "newton_schulz": "--orthogonalizer newton_schulz",
    "coherent": "--basis coherent",
    "sgd": "--momentum 0",
    "budget": "a larger --max-steps",
    "certified": "a larger --max-steps or --init-escape",
    "far_radius": "a larger --radius",
}


def register(sub) -> None:
    p = sub.add_parser(
        "bounds",
        help="print the theory's bounds and estimates for a configuration",
        description="Print every theory result that applies to a configuration: its formula "
        "(plain text; --latex for LaTeX), whether its assumptions hold for this config (and "
        "what each failing one means), and its value (escape times in steps). Every config "
        "field has a flag; --config FILE.toml supplies defaults.",
        epilog="example where the main Muon bounds apply:\n  saddle bounds --optimizer muon "
        "--orthogonalizer polar --gamma 1 --bulk-scale 1e-3 \\\n    --init-escape 0.3 "
        "--sigma 0.002 --basis coherent --m 64 --n 64\n\n" + optimizer_defaults_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    p.add_argument("--json", action="store_true",
                   help="print a JSON list (with the LaTeX and plain-text formulas)")
    p.add_argument("--latex", action="store_true", help="print formulas as LaTeX")
    p.add_argument("--all", action="store_true",
                   help="also list results about other optimizers (never applicable)")
    p.set_defaults(func=cmd_bounds)


def plain_formula(result) -> str:
    """``lhs rel expr`` in sympy's plain text (``sstr``), with ``where sym = ...`` for the
    derived symbols."""
    import sympy as sp

    rel = {"upper": "<=", "lower": ">=", "estimate": "~"}[result.kind]
    lhs = plain_latex(result.lhs) if isinstance(result.lhs, str) else sp.sstr(result.lhs)
    text = f"{lhs} {rel} {sp.sstr(result.expr)}"
    defs = [f"{sp.sstr(a)} = {sp.sstr(b)}" for a, b in result.definitions]
    return text + (f", where {'; '.join(defs)}" if defs else "")


# The LaTeX of the results' left-hand sides, as plain text (the right-hand sides are sympy
# expressions and print through sstr).
_LATEX_WORDS = [
    (r"\langle", "<"), (r"\rangle", ">"), (r"\top", "T"), (r"\circ", "o"),
    (r"\mathbb{E}", "E"), (r"\max", "max"), (r"\ln", "ln"), (r"\,", " "),
    (r"\hat ", "hat_"),
]


def plain_latex(text: str) -> str:
    """A LaTeX snippet of a result's left-hand side in plain text (``\\frac{a}{b}`` becomes
    ``(a)/(b)``, ``\\operatorname{sd}`` becomes ``sd``, Greek letters lose their backslash)."""
    import re

    for old, new in _LATEX_WORDS:
        text = text.replace(old, new)
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", text)
    text = re.sub(r"\\operatorname\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)  # \theta -> theta
    text = re.sub(r"\^\{([^{}]*)\}", r"^\1", text).replace("{", "").replace("}", "")
    return " ".join(text.split())


def bounds_for(config, include_all: bool = False) -> list[dict]:
    """The JSON objects of ``saddle bounds --json`` for a config."""
    from .. import theory

    results = list(theory.RESULTS.values()) if include_all else theory.applicable(config)
    out = []
    for r in results:
        d = _as_dict(r, config)
        d["formula"] = plain_formula(r)
        if not r.applies_to(config):
            d["assumptions_hold"] = False
            d["value"] = None
        out.append(d)
    return out


def _as_dict(result, config) -> dict:
    """``result.as_dict(config)``; a formula that cannot be evaluated at this config (a
    division by zero at sigma = 0, an overflow) gets value None instead of a traceback."""
    import warnings

    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return result.as_dict(config)
        except (ZeroDivisionError, OverflowError, FloatingPointError, ValueError):
            pass
    checks = result.check(config)
    return dict(
        name=result.name, quantity=result.quantity, kind=result.kind,
        optimizer=result.optimizer, latex=result.latex,
        assumptions_hold=all(ok for _, ok in checks), value=None, title=result.title,
        assumptions=[dict(name=a.name, description=a.description, holds=ok)
                     for a, ok in checks],
        trajectory_assumptions=[a.description for a in result.state_assumptions()],
        d_dependence=result.d_dependence,
    )


def nearest_fix(rows: list[dict], given: frozenset[str] = frozenset()) -> str | None:
    """Flags that would make failing assumptions hold (those with a one-flag fix, not
    changing the flags in ``given``), or None."""
    fixes: dict[str, str] = {}  # by flag: the first result's wish wins (no --x a --x b)
    for d in rows:
        for a in d["assumptions"]:
            fix = FIXES.get(a["name"])
            if not a["holds"] and fix and fix.startswith("--") and fix.split()[0] not in given:
                fixes.setdefault(fix.split()[0], fix)
    return " ".join(fixes.values()) if fixes else None


def cmd_bounds(args: argparse.Namespace) -> int:
    from ..memory import check_memory

    config = config_from_args(args)
    check_memory(config)  # the theory reads the landscape's bases
    start_numerics()
    rows = bounds_for(config, include_all=args.all)
    if args.json:
        print_json(rows)
        return 0
    from rich.console import Console
    from rich.markup import escape

    console = Console(soft_wrap=True, highlight=False)
    c = config
    console.print(
        f"[bold]{c.optimizer}[/bold] on a {escape(c.components()[0].describe(c))}, {c.noise} "
        f"noise, lr = {c.learning_rate}; config {c.config_hash()}"
    )
    if not rows:
        console.print(f"no theory result is about this config (the lab's theory covers the "
                      f"spectral saddle; this is landscape {c.landscape!r})")
    for d in rows:
        v = d["value"]
        value = "-" if v is None else f"{v:.6g}"
        if d["assumptions_hold"]:
            status = "[green]assumptions hold[/green]"
        else:
            status = "[red]assumptions fail[/red]"
        formula = f"$$ {d['latex']} $$" if args.latex else d["formula"]
        console.print(
            f"\n[bold]{escape(d['name'])}[/bold] ({d['kind']} on {d['quantity']}): "
            f"value {value}; {status}\n  {escape(d['title'])}\n  {escape(formula)}"
        )
        for a in d["assumptions"]:
            if not a["holds"]:
                fix = FIXES.get(a["name"])
                console.print(f"  [red]fails[/red] {escape(a['name'])}: "
                              f"{escape(a['description'])}"
                              + (f" [dim](try {escape(fix)})[/dim]" if fix else ""))
    failing = [d for d in rows if not d["assumptions_hold"]]
    given = frozenset("--" + k[6:].replace("_", "-") for k, v in vars(args).items()
                      if k.startswith("field_") and v is not None)
    fix = nearest_fix(failing, given)  # flags the user chose are not overridden
    if fix:
        console.print(f"\n{len(failing)} of {len(rows)} results do not apply to this config; "
                      f"nearest config where more apply: add {escape(fix)}")
    return 0
