r"""The regime map: where claims C1 and C2 can be tested, and where their answer is built in.

A *regime* is everything about a run's landscape and noise except the basis and the
dimension: the bulk spectrum, the flatness gamma, the quartic coupling kappa, the noise model
and its size. The regime-map experiment (``simulations/regimes.toml``) changes one factor at
a time away from a base regime (:data:`BASE`), on three bases (coherent, a partial rotation
of it, and the structured incoherent one; :data:`BASES` orders them), for every optimizer, under
learning-rate protocols that hold one stated norm fixed across D.

This module names the regimes (:func:`regime_label`), knows which cells answer a claim by
construction (:func:`construction`), and builds the map's table (:func:`regime_table`),
its verdicts (:func:`regime_verdicts`) and its figure (:func:`plot_regime_map`).

What is built in, and why:

- **C1 fails by construction** for an element-wise optimizer (AdamW, sign descent, SGD) on a
  coherent basis with kappa = 0 and noise whose per-entry law does not depend on D
  (isotropic, student_t, none), at a learning rate that does not change with D. The loss is
  then a sum of one-coordinate terms, the escape coordinate is one entry of W, and an
  element-wise update of that entry reads only that entry's gradient: its law is the same at
  every D, so b = 0 in law (``docs/theory/adamw.md``).
- **Set by the protocol**: the same cells when the protocol changes the learning rate with D
  (``matched_spectral``: AdamW's rate falls like 1/(sqrt m + sqrt n)). The escape coordinate
  is still a one-dimensional system; only its rate moves, so a step-limited escape has
  b = -d log(lr) / d log(D), computed from the rows (``protocol_b``).
- **Basis irrelevant by symmetry**: SGD and Muon (Newton-Schulz or polar) are equivariant
  under W -> P W Q^T, and isotropic, opnorm and Gaussian low-rank noise (with no coherence
  with the escape vectors) are rotation-invariant in law, as is the Gaussian start. For
  these cells every basis is the coherent one rotated (the partial basis too: its P and Q
  are orthogonal, exp of an antisymmetric matrix): the law of every basis-free quantity
  (escape time, drift) is the same on all bases, so any difference between their rows is
  sampling noise, and a coherence effect (C4) cannot show there.

Nothing is built in for an element-wise optimizer on the partial basis: its escape direction
keeps about half of each escape vector's mass on one coordinate axis at every D (a quarter
of E = p q^T on one entry of W) and spreads the rest, so the escape is no longer a
one-dimensional system. Nor for Mano (neither element-wise nor equivariant) on any basis.

A cell whose runs are all censored (no escape at any D within the budget) has no exponent:
its class is "censored", never a fitted b; a cell whose largest D has its median beyond the
budget is a "cliff" (:func:`saddle.classes.classify_b`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .classes import classify_b, md_table, optimizer_label, with_label
from .config import FIELDS
from .predictions import cell_theory
from .registry import NOISES, OPTIMIZERS

__all__ = ["BASE", "BASES", "REGIME_FIELDS", "regime_label", "construction", "regime_table",
           "regime_verdicts", "plot_regime_map", "basis_irrelevant", "headline", "analyse",
           "all_censored", "report_lines", "mechanisms"]

# The fields that make up a regime (the basis and the shape are not among them).
REGIME_FIELDS = ("bulk", "bulk_scale", "bulk_tail", "bulk_ratio", "gamma", "quartic",
                 "radius", "noise", "sigma", "noise_rank", "noise_zipf", "noise_df",
                 "noise_coherence")
# The base regime of simulations/regimes.toml, the config defaults; a regime's label names
# what differs from it.
BASE = {k: FIELDS[k].default for k in ("bulk", "bulk_scale", "gamma", "quartic", "radius",
                                       "noise", "sigma")}

# The map's bases, from the most coherent (the escape direction is one entry of W) to the
# least; the order of the figure's columns and of the per-regime text.
BASES = ("coherent", "partial", "structured", "incoherent")

_GREEK = {"gamma": "γ", "quartic": "κ", "bulk_scale": "λ", "bulk_tail": "α", "sigma": "σ",
          "noise_coherence": "c", "radius": "r"}


def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _same(a, b) -> bool:
    fa, fb = _num(a), _num(b)
    if fa is not None and fb is not None:
        return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=0.0)
    return a == b


def _coherence(row) -> float:
    return _num(row.get("noise_coherence")) or 0.0


def regime_label(row) -> str:
    """What a row's regime changes from :data:`BASE` ("base" when nothing), e.g.
    "γ=0, r=0.3", "power_law α=1.5", "opnorm σ=0.2", "κ=0.05"."""
    parts = []
    if row.get("bulk", BASE["bulk"]) != BASE["bulk"]:
        bulk = str(row.get("bulk"))
        tail = _num(row.get("bulk_tail"))
        parts.append(f"{bulk} α={tail:g}" if bulk == "power_law" and tail else bulk)
    for key in ("bulk_scale", "gamma", "quartic", "radius"):
        v = row.get(key)
        if _num(v) is not None and not _same(v, BASE[key]):
            parts.append(f"{_GREEK[key]}={_num(v):g}")
    noise = row.get("noise", BASE["noise"])
    sigma = _num(row.get("sigma"))
    if noise != BASE["noise"] or (sigma is not None and not _same(sigma, BASE["sigma"])):
        text = f"{noise} σ={sigma:g}" if sigma is not None else str(noise)
        df_ = _num(row.get("noise_df"))  # set only where the noise model has it
        if df_:
            text += f" ν={df_:g}"
        parts.append(text)
    if _coherence(row) > 0:
        parts.append(f"aligned c={_coherence(row):g}")
    return ", ".join(parts) if parts else "base"


def construction(row, lr_varies: bool) -> dict[str, str]:
    """What a cell's own construction fixes, per claim: ``{"C1": label, "basis": label}``
    (empty strings where nothing is fixed). ``row``: the cell's optimizer, regime and basis
    fields; ``lr_varies``: whether the cell's learning rate changes with D. The rules read
    :attr:`OptimizerSpec.elementwise`, :attr:`OptimizerSpec.equivariant`,
    :attr:`NoiseSpec.shape_free_entries` and :attr:`NoiseSpec.rotation_invariant`."""
    out = {"C1": "", "basis": ""}
    opt, noise = row.get("optimizer"), row.get("noise")
    separable = (row.get("basis") == "coherent" and (_num(row.get("quartic")) or 0.0) == 0.0
                 and row.get("escape", "projection") == "projection")
    if (opt in OPTIMIZERS and noise in NOISES and OPTIMIZERS[opt].elementwise and separable
            and NOISES[noise].shape_free_entries):
        out["C1"] = "set by the protocol" if lr_varies else "fails by construction"
    if basis_irrelevant(row):
        out["basis"] = "basis irrelevant by symmetry"
    return out


def basis_irrelevant(row) -> bool:
    """Whether the basis cannot change the law of a run: an equivariant optimizer, noise
    whose law turns with the landscape, and W* = 0 (:attr:`OptimizerSpec.equivariant`,
    :attr:`NoiseSpec.rotation_invariant`)."""
    opt, noise = row.get("optimizer"), row.get("noise")
    if opt not in OPTIMIZERS or noise not in NOISES:
        return False
    return (OPTIMIZERS[opt].equivariant and NOISES[noise].rotation_invariant
            and row.get("saddle_point", "zero") in ("zero", None))


def _lr_slope(g: pd.DataFrame) -> float:
    """d log(lr) / d log(D) over a series' rows (0 when the rate is one value)."""
    if "learning_rate" not in g.columns:
        return 0.0
    per_d = g.groupby("D")["learning_rate"].median()
    per_d = per_d[per_d > 0]
    if len(per_d) < 2 or per_d.nunique() == 1:
        return 0.0
    x, y = np.log(per_d.index.to_numpy(float)), np.log(per_d.to_numpy(float))
    return float(np.polyfit(x, y, 1)[0])


def regime_table(runs: pd.DataFrame, exps: pd.DataFrame) -> pd.DataFrame:
    """One row per (regime, basis, protocol, method): the exponent with its CI, outcome and
    censoring (from ``exps``, the :func:`saddle.analysis.exponent_table` of ``runs`` with a
    ``method`` column), the regime's label, and what its construction fixes.

    Columns added: regime, class (:func:`saddle.classes.classify_b`; "censored" where every
    run is censored, :func:`all_censored`; "insufficient" where else no exponent), lr_slope
    (d log lr / d log D), protocol_b (-lr_slope: the exponent a step-limited escape gets from
    the rate alone), c1_construction, basis_symmetry, and the theory's prediction where an
    estimate of ``saddle.theory`` covers the cell (:func:`saddle.predictions.predicted_exponent`:
    theory_b, theory_result, theory_tau_max_d) and every escape-time result whose assumptions
    hold at each of its shapes (theory_applicable, comma-separated)."""
    if exps.empty:
        return pd.DataFrame()
    keys = [c for c in ("method", "basis", "lr_protocol", *REGIME_FIELDS) if c in exps.columns]
    rows = []
    for r in exps.to_dict("records"):
        mask = np.ones(len(runs), bool)
        for c in keys:
            if c in runs.columns:
                v = r.get(c)
                col = runs[c]
                mask &= (col.isna().to_numpy() if v is None or (isinstance(v, float)
                         and math.isnan(v)) else (col == v).to_numpy())
        g = runs[mask]
        slope = _lr_slope(g)
        built = construction(r, lr_varies=abs(slope) > 1e-9)
        cls = classify_b(r["low"], r["high"], bool(r.get("dimension_free_possible", True)))
        if all_censored(r):
            cls = "censored"
        elif r.get("outcome") == "insufficient":
            cls = "insufficient"
        rows.append(dict(r, regime=regime_label(r), **{"class": cls}, lr_slope=slope,
                         protocol_b=-slope, c1_construction=built["C1"],
                         basis_symmetry=built["basis"], max_steps=_budget(g),
                         **cell_theory(g)))
    return pd.DataFrame(rows)


def _budget(g: pd.DataFrame) -> float:
    """The step budget of a cell's runs (the largest, should they differ)."""
    if g.empty or "max_steps" not in g.columns:
        return math.nan
    return float(g["max_steps"].max())


def all_censored(r) -> bool:
    """Whether an exponent row's runs are all censored (no escape at any D in the budget):
    from ``censored_frac`` (or ``censored_runs`` of ``runs``)."""
    frac = _num(r.get("censored_frac"))
    if frac is None:
        runs, cens = _num(r.get("runs")), _num(r.get("censored_runs"))
        frac = cens / runs if runs and cens is not None else None
    return frac is not None and frac >= 1.0


def _claim_cell(t: pd.DataFrame, method: str, want: str) -> tuple[str, str]:
    """(verdict, C1 construction note) of one claim in one (regime, basis, protocol) cell."""
    m = t[t["method"] == method]
    if m.empty:
        return "—", ""
    r = m.iloc[0]
    cls = r["class"]
    if cls in ("insufficient", "undetermined"):
        v = "no fit"
    elif cls == "censored":
        v = "censored"
    elif cls == "cliff":
        v = "cliff"
    elif cls == "inconclusive":
        v = "inconclusive"
    elif cls == want:
        v = "holds"
    elif want == "O(D)" and cls == "grows with D (sub-linear)":
        v = "partly (sub-linear)"
    else:
        v = f"fails ({cls})"
    return v, r.get("c1_construction", "")


def regime_verdicts(table: pd.DataFrame, c1_method: str, c2_method: str) -> pd.DataFrame:
    """Per (regime, basis, protocol): the C1 verdict (``c1_method``'s class is O(D)), the C2
    verdict (``c2_method``'s class is dimension-free), whether the paper's contrast reverses
    (the C1 method's exponent CI wholly below the C2 method's), and what the construction
    fixes for C1."""
    if table.empty:
        return pd.DataFrame()
    out = []
    for (regime, basis, proto), t in table.groupby(["regime", "basis", "lr_protocol"],
                                                    sort=False):
        c1, c1_note = _claim_cell(t, c1_method, "O(D)")
        c2, _ = _claim_cell(t, c2_method, "dimension-free")
        a, m = t[t["method"] == c1_method], t[t["method"] == c2_method]
        reverses = bool(len(a) and len(m) and np.isfinite(a["high"].iloc[0])
                        and np.isfinite(m["low"].iloc[0])
                        and a["high"].iloc[0] < m["low"].iloc[0])

        def b_of(x):
            return (f"{x['exponent'].iloc[0]:.2f} [{x['low'].iloc[0]:.2f}, "
                    f"{x['high'].iloc[0]:.2f}]" if len(x) and np.isfinite(x["exponent"].iloc[0])
                    else "—")
        out.append(dict(regime=regime, basis=basis, lr_protocol=proto,
                        **{f"{c1_method}_b": b_of(a), f"{c2_method}_b": b_of(m)},
                        C1=c1, C1_construction=c1_note,
                        C2=c2, reverses=reverses))
    return pd.DataFrame(out)


def headline(verdicts: pd.DataFrame, claim: str) -> tuple[str, list[str]]:
    """A claim's verdict over the map's cells whose construction does not fix it: "holds",
    "fails", or "holds in ..., fails in ..."; with the cells listed per outcome."""
    if verdicts.empty:
        return "undetermined (no regime map)", []
    v = verdicts
    if claim == "C1":
        v = v[v["C1_construction"] == ""]
    cell = lambda r: f"{r.regime} / {r.basis} / {r.lr_protocol}"
    said = lambda r: getattr(r, claim)
    holds = [cell(r) for r in v.itertuples() if said(r) == "holds"]
    partly = [cell(r) for r in v.itertuples() if said(r).startswith("partly")]
    fails = [f"{cell(r)} {said(r)[len('fails '):]}" for r in v.itertuples()
             if said(r).startswith("fails")]
    other = [f"{cell(r)} ({said(r)})" for r in v.itertuples()
             if said(r) in ("no fit", "censored", "cliff", "inconclusive")]
    decided = len(holds) + len(partly) + len(fails)
    if not decided:
        verdict = "undetermined (no cell with a decided class outside the built-in cases)"
    elif len(holds) == decided:
        verdict = f"holds in all {decided} decided cells"
    elif len(fails) == decided:
        verdict = f"fails in all {decided} decided cells"
    else:
        verdict = (f"holds in {len(holds)}, partly in {len(partly)} and fails in {len(fails)} "
                   f"of {decided} decided cells")
    verdict += f" ({len(other)} more without a decided class)" if other else ""
    lines = ([f"holds: {x}" for x in holds] + [f"partly (sub-linear growth): {x}" for x in partly]
             + [f"fails: {x}" for x in fails] + [f"no verdict: {x}" for x in other])
    return verdict, lines


def _inside(r, value: float) -> bool:
    return bool(np.isfinite(r["low"]) and r["low"] <= value <= r["high"])


def mechanisms(table: pd.DataFrame) -> list[str]:
    """Measured checks of the mechanisms the construction and the protocols predict, one line
    each: the built-in answers against their predicted exponent, the protocol's exponent
    against the measured one, the symmetric cells across bases, the basis effects where the
    basis can matter, the cliffs and the censored cells."""
    if table.empty:
        return []
    fitted = table[np.isfinite(table["low"].astype(float))]
    lines = []
    built = fitted[fitted["c1_construction"] != ""]
    if len(built):
        ok = sum(_inside(r, r["protocol_b"]) for r in built.to_dict("records"))
        lines.append(
            f"Built-in C1 answers: in {ok} of {len(built)} fitted cells whose construction "
            "fixes AdamW's escape to a one-dimensional system, the measured b's CI contains "
            "the predicted exponent (0 at a fixed rate; protocol_b = −d log lr/d log D when "
            "the protocol moves the rate).")
    for method in sorted(fitted["method"].unique()):
        rows = fitted[(fitted["method"] == method) & (fitted["c1_construction"] == "")]
        moved = rows[rows["protocol_b"].abs() > 1e-9]
        if len(moved):
            ok = sum(_inside(r, r["protocol_b"]) for r in moved.to_dict("records"))
            pb = ", ".join(sorted({f"{v:.2f}" for v in moved["protocol_b"]}))
            lines.append(
                f"{method}, protocols that move its rate with D (protocol_b = {pb}): the "
                f"measured b's CI contains protocol_b in {ok} of {len(moved)} fitted cells, "
                "i.e. the rate's scaling alone explains the exponent there.")
    lines += _theory_lines(table, fitted)
    lines += _symmetry_line(fitted) + _basis_effect_lines(fitted)
    cl = table[table["class"] == "cliff"]
    if len(cl):
        lines.append("Cliffs (median beyond the budget at the largest D): " + "; ".join(
            f"{r.regime} / {r.basis} / {r.lr_protocol} / {r.method}"
            for r in cl.itertuples()) + ".")
    cen = table[table["class"] == "censored"]
    if len(cen):
        lines.append("Censored (no run escaped at any D within the budget; no exponent): "
                     + "; ".join(f"{r.regime} / {r.basis} / {r.lr_protocol} / {r.method}"
                                 for r in cen.itertuples()) + ".")
    return lines


def _theory_lines(table: pd.DataFrame, fitted: pd.DataFrame) -> list[str]:
    """The theory's estimates against the measured cells: exponents where a cell is
    fitted, and the predicted median against the budget where it is not."""
    if "theory_b" not in table.columns:
        return []
    lines = []
    with_b = fitted[np.isfinite(fitted["theory_b"].astype(float))]
    if len(with_b):
        ok = sum(_inside(r, r["theory_b"]) for r in with_b.to_dict("records"))
        names = ", ".join(sorted(set(with_b["theory_result"])))
        gap = np.abs(with_b["exponent"].astype(float) - with_b["theory_b"].astype(float))
        lines.append(
            f"Theory's exponent (escape-time estimates of `saddle.theory`: {names}, evaluated "
            f"at each cell's configs and rates): the measured b's CI contains it in {ok} of "
            f"{len(with_b)} fitted cells it covers; median |b − b_theory| = "
            f"{float(np.median(gap)):.2f}.")
    unfit = table[~table.index.isin(fitted.index)]
    pred = unfit[~np.isnan(unfit["theory_tau_max_d"].astype(float))]
    if len(pred):
        beyond = pred[pred["theory_tau_max_d"].astype(float) > pred["max_steps"].astype(float)]
        lines.append(
            f"Cells without a fitted exponent that an estimate covers: in {len(beyond)} of "
            f"{len(pred)} the estimated median at the largest D is beyond the step budget "
            "(the estimate predicts the censoring).")
    return lines + _coverage_lines(table)


def _coverage_lines(table: pd.DataFrame) -> list[str]:
    """How many cells of the map some result of ``saddle.theory`` covers."""
    if "theory_applicable" not in table.columns or table.empty:
        return []
    has = table["theory_applicable"].fillna("").astype(str) != ""
    est = table["theory_result"].fillna("").astype(str) != ""
    line = (f"Theory coverage: {int(has.sum())} of {len(table)} cells have at least one "
            f"applicable escape-time result (assumptions other than the step budget hold at "
            f"every D); {int(est.sum())} have an estimate that gives the exponent.")
    bare = table[~has]
    if len(bare):
        line += " Cells without one: " + "; ".join(
            f"{r.regime} / {r.basis} / {r.lr_protocol} / {r.method}"
            for r in bare.itertuples()) + "."
    return [line]


def _symmetry_line(fitted: pd.DataFrame) -> list[str]:
    """The symmetric cells: do the exponents on every basis share a point of their CIs?"""
    pairs = fitted[fitted["basis_symmetry"] != ""]
    agree = total = 0
    for _, g in pairs.groupby(["regime", "lr_protocol", "method"]):
        if g["basis"].nunique() < 2:
            continue
        r = g.to_dict("records")
        total += 1
        agree += int(max(x["low"] for x in r) <= min(x["high"] for x in r))
    if not total:
        return []
    return [f"Symmetry: of {total} (regime, protocol, method) cells where the basis cannot "
            f"matter, the exponents' CIs on all their bases share a point in {agree}."]


def _basis_effect_lines(fitted: pd.DataFrame) -> list[str]:
    """Per method, where the basis can matter: on how many cells each incoherent basis's
    exponent CI is disjoint from the coherent one's."""
    free = fitted[fitted["basis_symmetry"] == ""]
    lines = []
    for method, gm in free.groupby("method"):
        parts = []
        for basis in [b for b in BASES[1:] if b in set(gm["basis"])]:
            moved = same = 0
            for _, g in gm.groupby(["regime", "lr_protocol"]):
                coh, other = g[g["basis"] == "coherent"], g[g["basis"] == basis]
                if len(coh) and len(other):
                    d = _disjoint(coh.iloc[0], other.iloc[0])
                    moved, same = moved + d, same + (not d)
            if moved + same:
                parts.append(f"{basis} vs coherent: CIs disjoint in {moved} of {moved + same}")
        if parts:
            lines.append(f"Basis effect, {method} (cells where the basis can matter, both "
                         "fitted): " + "; ".join(parts) + ".")
    return lines


def _b_text(r) -> str:
    if r["class"] == "censored":
        return "censored (no escape at any D)"
    if not np.isfinite(r["low"]):
        return "no fit"
    tail = " (cliff)" if r["class"] == "cliff" else ""
    return f"{r['exponent']:.2f} [{r['low']:.2f}, {r['high']:.2f}]{tail}"


def _disjoint(a, b) -> bool:
    return bool(np.isfinite(a["low"]) and np.isfinite(b["low"])
                and (a["high"] < b["low"] or b["high"] < a["low"]))


def _basis_order(bases) -> list:
    """``bases`` in :data:`BASES` order (unknown names last, as given)."""
    bases = list(dict.fromkeys(bases))
    rank = {b: i for i, b in enumerate(BASES)}
    return sorted(bases, key=lambda b: rank.get(b, len(BASES) + bases.index(b)))


def _basis_notes(by_basis: dict) -> str:
    """What the bases of one (regime, protocol, method) cell say against the coherent one:
    the symmetry's overlap, or the basis moving b."""
    first, *rest = by_basis.values()
    if first["basis_symmetry"]:
        fitted = [r for r in by_basis.values() if np.isfinite(r["low"])]
        if len(fitted) < 2:
            return ""
        common = max(r["low"] for r in fitted) <= min(r["high"] for r in fitted)
        return "; bases: " + ("CIs overlap, as the symmetry requires" if common else
                              "CIs disjoint although the symmetry forbids a difference: "
                              "sampling or a finite-precision effect")
    notes = []
    for r in rest:
        if _disjoint(first, r):
            notes.append(f"the {r['basis']} basis moves b from {first['exponent']:.2f} "
                         f"({first['basis']}) to {r['exponent']:.2f} (CIs disjoint)")
    return "; " + "; ".join(notes) if notes else ""


def _method_text(m: pd.DataFrame) -> str:
    """One method's exponents in one regime: per protocol, per basis, with the rate's own
    exponent and the basis notes."""
    cells = []
    for proto, gp in m.groupby("lr_protocol", sort=False):
        recs = {r["basis"]: r for r in gp.to_dict("records")}
        by_basis = {b: recs[b] for b in _basis_order(recs)}
        text = ", ".join(f"{b} {_b_text(r)}" for b, r in by_basis.items())
        pb = gp["protocol_b"].iloc[0]
        cells.append(f"{proto}: {text} (the rate alone: {pb:+.2f})" + _basis_notes(by_basis))
    return "; ".join(cells)


def regime_paragraphs(table: pd.DataFrame, methods: tuple[str, str]) -> list[str]:
    """One paragraph per regime, from the measured exponents: each method's b per basis and
    protocol beside the protocol's own exponent (the claim ``methods`` first, then the
    map's other methods), and what the numbers single out (a basis effect, the symmetry, a
    cliff, a censored cell, a reversal between the two claim methods)."""
    out = []
    order = [*methods, *sorted(set(table["method"]) - set(methods))]
    for regime, g in table.groupby("regime", sort=False):
        parts = [f"**{regime}.**"]
        for method in order:
            m = g[g["method"] == method]
            if len(m):
                parts.append(f"{method}: {_method_text(m)}.")
        a, mu = g[g["method"] == methods[0]], g[g["method"] == methods[1]]
        for (basis, proto), ga in a.groupby(["basis", "lr_protocol"], sort=False):
            gm = mu[(mu["basis"] == basis) & (mu["lr_protocol"] == proto)]
            if len(gm) and np.isfinite(ga["high"].iloc[0]) and np.isfinite(gm["low"].iloc[0]) \
                    and ga["high"].iloc[0] < gm["low"].iloc[0]:
                parts.append(f"Reversal on {basis}/{proto}: {methods[0]}'s b lies wholly below "
                             f"{methods[1]}'s.")
        out.append(" ".join(parts))
    return out


_SHORT = {"coherent": "coh.", "partial": "part.", "structured": "struct.",
          "incoherent": "incoh."}


def _cell_text(r) -> tuple[float, str]:
    """A map cell's colour value (NaN where no exponent) and its printed text with marks."""
    fitted = bool(np.isfinite(r["low"]))
    mk = {"cliff": " C", "insufficient": " ·"}.get(r["class"], "")
    mk += (" *" if r["c1_construction"] else "") + (" =" if r["basis_symmetry"] else "")
    body = (f"{r['exponent']:.2f}\n[{r['low']:.2f}, {r['high']:.2f}]" if fitted
            else "censored" if r["class"] == "censored" else "no fit")
    body += _theory_text(r)
    return (r["exponent"] if fitted else np.nan), body + (f"\n{mk.strip()}" if mk else "")


def _theory_text(r) -> str:
    """The theory's prediction printed under a map cell: its exponent ("th 0.25"), or "th ∞"
    where the estimate predicts no escape at the largest D, or "th >budget" where its median
    there is beyond the step budget; "th: bound" where only a bound applies (no estimate);
    empty where no result of the theory covers the cell."""
    tau = _num(r.get("theory_tau_max_d"))
    if tau is None:
        return "\nth: bound" if str(r.get("theory_applicable") or "") else ""
    if math.isinf(tau):
        return "\nth ∞"
    b = _num(r.get("theory_b"))
    text = f"\nth {b:.2f}" if b is not None and math.isfinite(b) else ""
    budget = _num(r.get("max_steps"))
    if budget is not None and tau > budget:
        text += " >budget" if text else "\nth >budget"
    return text


def _map_panel(ax, t: pd.DataFrame, regimes: list, cols: list, lim: float):
    """One protocol's panel: regimes (rows) x (method, basis) (columns); returns the image."""
    grid = np.full((len(regimes), len(cols)), np.nan)
    text = [["not run" for _ in cols] for _ in regimes]
    for r in t.to_dict("records"):
        i, j = regimes.index(r["regime"]), cols.index((r["method"], r["basis"]))
        grid[i, j], text[i][j] = _cell_text(r)
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for i in range(len(regimes)):
        for j in range(len(cols)):
            dark = np.isfinite(grid[i, j]) and abs(grid[i, j]) > 0.65 * lim
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=5.5,
                    color="white" if dark else "black")
    for j in range(1, len(cols)):  # a line between methods
        if cols[j][0] != cols[j - 1][0]:
            ax.axvline(j - 0.5, color="black", lw=1.2)
    ax.set_xticks(range(len(cols)), [f"{m}\n{_SHORT.get(b, str(b))}" for m, b in cols],
                  fontsize=6)
    ax.set_yticks(range(len(regimes)), regimes, fontsize=7)
    return im


def plot_regime_map(table: pd.DataFrame, path) -> list[tuple[str, str]]:
    """One panel per lr protocol; in each, regimes (rows) x (method, basis) (columns, the
    bases in :data:`BASES` order), colour = exponent b; "censored": no escape at any D;
    marks: 'C' cliff, '·' no fit, '*' C1 fixed by construction (or by the protocol),
    '=' the basis cannot matter by symmetry. Returns the (method, basis) columns drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if table.empty:
        return []
    regimes = list(dict.fromkeys(table["regime"]))
    protocols = list(dict.fromkeys(table["lr_protocol"]))
    cols = [(m, b) for m in sorted(table["method"].unique())
            for b in _basis_order(table[table["method"] == m]["basis"])]
    fitted = table["exponent"][np.isfinite(table["low"].astype(float))]
    lim = max(0.5, float(fitted.abs().max()) if len(fitted) else 0.5)
    height = 0.55 * len(regimes) + 1.2
    fig, axes = plt.subplots(len(protocols), 1, squeeze=False,
                             figsize=(max(8, 0.8 * len(cols) + 3),
                                      height * len(protocols) + 1.3))
    for ax, proto in zip(axes[:, 0], protocols, strict=True):
        im = _map_panel(ax, table[table["lr_protocol"] == proto], regimes, cols, lim)
        ax.set_title(f"lr protocol: {proto}", fontsize=8)
        fig.colorbar(im, ax=ax, label="b (log τ = a + b log D)", fraction=0.03, pad=0.01)
    fig.suptitle("Regime map, measured dimension exponent b with its 95% CI; th: the theory's "
                 "predicted b (∞: no escape predicted; >budget: predicted median beyond the "
                 "budget; bound: only a bound applies).\nC: cliff; censored: no escape at any "
                 "D; ·: no fit; *: C1 fixed by construction or by the protocol; =: basis "
                 "irrelevant by symmetry", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return cols


def analyse(runs: pd.DataFrame, c1_method: str, c2_method: str,
            n_resamples: int = 999) -> dict:
    """The map from the regime experiment's runs: ``table`` (:func:`regime_table`) and
    ``verdicts`` (:func:`regime_verdicts` for the methods claims C1 and C2 are about); empty
    frames when there are no runs."""
    from .analysis import exponent_table, with_constant_columns

    if runs.empty:
        return dict(table=pd.DataFrame(), verdicts=pd.DataFrame())
    runs = with_label(runs)
    exps = exponent_table(runs, n_resamples=n_resamples)
    if exps.empty:
        return dict(table=pd.DataFrame(), verdicts=pd.DataFrame())
    exps = with_constant_columns(exps, runs,
                                 ("optimizer", "orthogonalizer", "basis", "lr_protocol",
                                  *REGIME_FIELDS))
    exps["method"] = [_method_of(r) for r in exps.to_dict("records")]
    table = regime_table(runs, exps)
    return dict(table=table, verdicts=regime_verdicts(table, c1_method, c2_method),
                methods=(c1_method, c2_method))


def _method_of(r: dict) -> str:
    """The method label of an exponent row (its orthogonalizer is a key only where it
    varies; the map runs Newton-Schulz)."""
    return optimizer_label(dict(r, orthogonalizer=r.get("orthogonalizer") or "newton_schulz"))


_TABLE_COLUMNS = ["regime", "basis", "lr_protocol", "method", "exponent", "low", "high",
                  "class", "outcome", "dims", "n_censored_dims", "censored_frac", "draws",
                  "seeds", "protocol_b", "theory_b", "theory_result", "c1_construction",
                  "basis_symmetry"]


def report_lines(res: dict) -> list[str]:
    """The regime-map section of the reproduction's report."""
    lines = ["\n## Regime map (measured)\n"]
    table, verdicts = res.get("table", pd.DataFrame()), res.get("verdicts", pd.DataFrame())
    if table.empty:
        lines.append("_No regime-map runs are stored._\n")
        return lines
    lines.append(
        "One factor at a time away from the base regime (constant bulk λ = 1, γ = 0.1, κ = 0, "
        "isotropic noise σ = 0.01, projection radius 1), each on three bases: coherent (the "
        "escape direction is one entry of W), partial (dense P, Q = exp of a random "
        "antisymmetric matrix at mixing 0.5: about a quarter of the escape direction's mass "
        "stays on one entry at every D, the rest spreads) and structured incoherent "
        "(randomized DCTs), for every optimizer, under learning-rate protocols that hold one "
        "stated norm fixed across D. A regime's name says what it changes from the base.\n")
    lines.append("What the construction fixes (see `saddle/regimes.py`):\n")
    lines.append("- *fails by construction* (C1): an element-wise optimizer on the coherent "
                 "basis with κ = 0 and noise whose per-entry law does not depend on D, at a "
                 "rate that does not change with D: the escape coordinate is one entry whose "
                 "law is the same at every D, so b = 0 in law. These cells never carry the C1 "
                 "verdict. On the partial basis nothing is fixed: the escape direction is "
                 "spread over many entries.")
    lines.append("- *set by the protocol* (C1): the same cells when the protocol moves the "
                 "rate with D; protocol_b = −d log lr / d log D is the exponent a step-limited "
                 "escape gets from the rate alone.")
    lines.append("- *basis irrelevant by symmetry*: SGD and Muon are equivariant under "
                 "W → PWQᵀ and isotropic, opnorm and low-rank noise are rotation-invariant in "
                 "law: the partial and structured cells are the coherent one rotated, with the "
                 "same law, so their differences are sampling noise and no coherence effect "
                 "(C4) can show there.")
    lines.append("- *censored*: no run escaped at any D within the step budget; such a cell "
                 "has no exponent (it is never given a fitted b) and no verdict.\n")
    lines.append("### Verdicts per cell\n")
    lines.append("C1: holds where AdamW's exponent class is O(D), partly where it grows "
                 "sub-linearly; C2: holds where Muon's (Newton–Schulz) is dimension-free; "
                 "fails names the class found; reverses: AdamW's CI lies wholly below Muon's "
                 "(the paper's contrast turned around).\n")
    lines.append(md_table(verdicts))
    for claim in ("C1", "C2"):
        v, cells = headline(verdicts, claim)
        lines.append(f"\n**{claim} over the cells its construction does not fix: {v}.**\n")
    mech = mechanisms(table)
    if mech:
        lines.append("\n### Mechanisms, measured beside their predictions\n")
        lines.extend(f"- {m}" for m in mech)
        lines.append("")
    if "methods" in res:
        lines.append("\n### Per regime (measured b with 95% CI; beside it the exponent the "
                     "protocol's rate alone gives a step-limited escape)\n")
        lines.extend(f"{p}\n" for p in regime_paragraphs(table, res["methods"]))
    rev = verdicts[verdicts["reverses"]]
    if len(rev):
        lines.append("Cells where the contrast reverses: " + "; ".join(
            f"{r.regime} / {r.basis} / {r.lr_protocol}" for r in rev.itertuples()) + ".\n")
    lines.append("\n### Exponents per cell and method (measured)\n")
    t = table.rename(columns={})
    lines.append(md_table(t[[c for c in _TABLE_COLUMNS if c in t.columns]]))
    return lines
