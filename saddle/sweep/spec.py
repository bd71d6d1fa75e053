"""Sweep specs: a TOML file of config fields where a list is an axis.

A spec uses the config field names of ``saddle run``::

    name = "dimension"          # optional label, stored with every row
    seeds = 16                  # seeds per grid point (seed = first seed, default 0)
    optimizer = ["adamw", "muon", "mano"]   # a list is an axis
    m = [16, 32, 64, 128]
    n = [16, 32, 64, 128]
    zip = [["m", "n"]]          # axes that move together (equal lengths): 4 shapes, not 16
    gamma = 0.1                 # a scalar is fixed
    exclude = [{ optimizer = "mano", m = 128 }]   # drop points matching every key
    lr_protocol = ["fixed", "tuned"]   # learning-rate protocols (an axis like any other)

    [[variants]]                # optional: an axis whose values are groups of fields
    optimizer = "muon"
    orthogonalizer = "polar"
    [[variants]]
    optimizer = "muon"
    orthogonalizer = "newton_schulz"

The grid is the product of the axes (zipped axes count as one, ``variants`` is one more axis),
minus the excluded points, times ``seeds`` seeds. In ``exclude`` a list value means "any of".
A field set both as an axis and in a variant takes the variant's value.

Sweep-only keys (not config fields):

``name``, ``zip``, ``exclude``, ``variants``, ``lr_protocol`` (``fixed``, ``matched_rms``,
``matched_frobenius``, ``matched_spectral``, ``tuned``, ``stability_edge``; see
:mod:`saddle.sweep.protocols`), ``lr_grid`` (multipliers of the base learning rate for
``tuned``; default ``[0.0625, 0.25, 1, 4, 16]``), ``target_rms`` (for ``matched_rms``;
default 2e-4 = 0.2 x AdamW's 1e-3), ``target_frobenius`` (for ``matched_frobenius``; default
0.02 = normalized GD's default step), ``target_spectral`` (for ``matched_spectral``; default
0.02 = Muon's default step on a square matrix), ``edge_grid`` (the multipliers
``stability_edge`` starts from; it searches past the top when nothing diverges there),
``trace_stride`` (store diagnostic traces of every k-th step),
``batch_runs`` (most runs per engine batch and per results file), ``landscape_draws`` (k >= 1:
every grid point runs on k landscape draws, ``landscape_seed`` = the point's seed + j for
j = 0..k-1, stored as the column ``landscape_draw`` = j; the analysis pools the draws as a
random factor; not together with a list of ``landscape_seed``), ``description`` (free text)
and ``quick`` (a table of keys that replace the spec's own under ``--quick``, e.g.
``quick = { seeds = 4, m = [32, 64] }``).

Conditional fields (e.g. ``orthogonalizer`` for AdamW) are nulled by the config's
normalization, so points that differ only in fields that do not apply collapse into one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FIELDS, Config, load_toml
from ..errors import SaddleInputError, suggest
from ..memory import check_memory
from .protocols import DEFAULT_TARGETS

__all__ = ["SweepSpec", "Point", "load_spec", "parse_spec", "PROTOCOLS", "SPEC_KEYS"]

MAX_POINTS = 100_000  # grid points per spec
MAX_RUNS = 10_000_000  # points x seeds per spec (protocols may multiply it further)
PROTOCOLS = ("fixed", "matched_rms", "matched_frobenius", "matched_spectral", "tuned",
             "stability_edge")
DEFAULT_LR_GRID = (0.0625, 0.25, 1.0, 4.0, 16.0)
DEFAULT_EDGE_GRID = tuple(2.0**k for k in range(-4, 7))
SPEC_KEYS = (
    "name", "zip", "exclude", "variants", "lr_protocol", "lr_grid", "target_rms",
    "target_frobenius", "target_spectral", "edge_grid", "trace_stride", "batch_runs", "quick",
    "description", "landscape_draws",
)


@dataclass(frozen=True)
class Point:
    """One grid point: a validated config (with its seeds) and its protocol."""

    config: Config
    lr_protocol: str = "fixed"
    labels: tuple[tuple[str, Any], ...] = ()  # the axis values that define the point
    landscape_draw: int | None = None  # j of landscape_draws (None: not declared)


@dataclass
class SweepSpec:
    name: str
    points: list[Point]
    seeds: int
    lr_grid: tuple[float, ...] = DEFAULT_LR_GRID
    target_rms: float = DEFAULT_TARGETS["rms"]
    target_frobenius: float = DEFAULT_TARGETS["frobenius"]
    target_spectral: float = DEFAULT_TARGETS["spectral"]
    edge_grid: tuple[float, ...] = DEFAULT_EDGE_GRID
    trace_stride: int | None = None
    batch_runs: int | None = None
    axes: dict[str, list] = field(default_factory=dict)
    source: dict = field(default_factory=dict)

    def target(self, norm: str) -> float:
        """The target of the matched protocol for ``norm`` (rms, frobenius, spectral)."""
        return getattr(self, f"target_{norm}")

    @property
    def n_runs_nominal(self) -> int:
        return len(self.points) * self.seeds


def _err(key: str, got: Any, allowed: str) -> SaddleInputError:
    return SaddleInputError(f"spec: {key}: got {got!r}; allowed: {allowed}")


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or (key not in FIELDS and key not in SPEC_KEYS):
        s = suggest(str(key), list(FIELDS) + list(SPEC_KEYS))
        hint = f" (did you mean {s!r}?)" if s else ""
        raise SaddleInputError(
            f"spec: {where}{key!r} is not a config field or sweep key{hint}; see "
            "'saddle run --help' and 'saddle sweep --help'"
        )


def _positive_floats(key: str, v: Any) -> tuple[float, ...]:
    if not isinstance(v, list) or not v:
        raise _err(key, v, "a non-empty list of positive numbers")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or x <= 0:
            raise _err(key, v, "a non-empty list of positive, finite numbers")
        out.append(float(x))
    return tuple(out)


def _positive_int(key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _err(key, v, "an integer >= 1")
    return v


def load_spec(path: str | Path, quick: bool = False) -> SweepSpec:
    """Read and validate a spec file (one-line :class:`SaddleInputError` on any problem)."""
    data = load_toml(path)
    default_name = Path(path).stem
    return parse_spec(data, default_name=default_name, quick=quick)


def parse_spec(
    data: Mapping[str, Any], default_name: str = "sweep", quick: bool = False
) -> SweepSpec:
    """Validate a spec given as a dict and expand it into grid points."""
    data = _with_quick(data, quick)
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise _err("description", description, "a string")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise _err("name", name, "a non-empty string")
    options = _sweep_options(data)
    fixed, axes = _fixed_and_axes(data)
    zipped = _zip_groups(data.get("zip", []), axes)
    variants = _variants(data.get("variants", [{}]))
    excludes = _excludes(data.get("exclude", []))
    _check_repeats(axes, zipped)
    points = _expand(fixed, axes, zipped, variants, excludes)
    points = _landscape_draws(points, data, axes)
    _check_size(points, options["trace_stride"])
    return SweepSpec(name=name, points=points, seeds=points[0].config.seeds, axes=axes,
                     source=dict(data), **options)


def _landscape_draws(points: list[Point], data: Mapping[str, Any],
                     axes: Mapping[str, list]) -> list[Point]:
    """Each point as ``landscape_draws`` points on landscape seeds base + j (base: the point's
    own landscape_seed, 0 when unset), labelled ``landscape_draw`` = j."""
    if "landscape_draws" not in data:
        return points
    k = data["landscape_draws"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise _err("landscape_draws", k, "an integer >= 1")
    if "landscape_seed" in axes:
        raise _err("landscape_draws", k, "landscape_draws or a list of landscape_seed, not "
                   "both (draws set landscape_seed = base + j)")
    if len(points) * k > MAX_POINTS:
        raise _err("landscape_draws", k, f"at most {MAX_POINTS} grid points times draws "
                   f"({len(points)} points here)")
    out = []
    for p in points:
        base = p.config.landscape_seed or 0
        for j in range(k):
            c = p.config.replace(landscape_seed=base + j)
            out.append(Point(c, p.lr_protocol, p.labels + (("landscape_draw", j),), j))
    return out


def _check_size(points: list[Point], trace_stride: int | None) -> None:
    """Refuse a spec with too many runs, or a point whose one run cannot fit in memory."""
    runs = len(points) * points[0].config.seeds
    if runs > MAX_RUNS:
        raise SaddleInputError(f"spec: seeds: {len(points)} points x "
                               f"{points[0].config.seeds} seeds = {runs} runs; allowed: at "
                               f"most {MAX_RUNS} runs per sweep")
    seen = set()
    for p in points:
        c = p.config
        key = (c.landscape, c.m, c.n, c.basis, c.dtype, c.max_steps, c.escape_rank)
        if key not in seen:
            seen.add(key)
            check_memory(c, trace_stride)


def _with_quick(data: Any, quick: bool) -> dict[str, Any]:
    """A copy of the spec table with its keys checked and, under ``quick``, the ``quick``
    table's keys replacing the spec's own; the ``quick`` key itself is removed."""
    if not isinstance(data, Mapping):
        raise SaddleInputError(f"spec: got {type(data).__name__}; allowed: a table of fields")
    for key in data:
        _check_key(key, "")
    data = dict(data)
    overrides = data.pop("quick", {})
    if not isinstance(overrides, Mapping):
        raise _err("quick", overrides, "a table of spec keys")
    for key in overrides:
        _check_key(key, "quick: ")
        if key in ("quick", "name"):
            raise _err(f"quick.{key}", overrides[key], "other spec keys")
    if quick:
        data.update(overrides)
    return data


def _sweep_options(data: Mapping[str, Any]) -> dict[str, Any]:
    """The validated sweep options: the :class:`SweepSpec` fields that are not the grid."""
    lr_grid = _positive_floats("lr_grid", data["lr_grid"]) if "lr_grid" in data else DEFAULT_LR_GRID
    edge_grid = (
        tuple(sorted(_positive_floats("edge_grid", data["edge_grid"])))
        if "edge_grid" in data else DEFAULT_EDGE_GRID
    )
    targets = {}
    for norm, default in DEFAULT_TARGETS.items():
        key = f"target_{norm}"
        t = data.get(key, default)
        if isinstance(t, bool) or not isinstance(t, int | float) or not (
            math.isfinite(t) and t > 0
        ):
            raise _err(key, t, "a positive, finite number")
        targets[key] = float(t)
    trace_stride = data.get("trace_stride")
    if trace_stride is not None:
        trace_stride = _positive_int("trace_stride", trace_stride)
    batch_runs = data.get("batch_runs")
    if batch_runs is not None:
        batch_runs = _positive_int("batch_runs", batch_runs)
    return dict(lr_grid=lr_grid, edge_grid=edge_grid, **targets, trace_stride=trace_stride,
                batch_runs=batch_runs)


def _fixed_and_axes(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list]]:
    """Split the config fields (and ``lr_protocol``) into fixed values and axes (lists)."""
    fixed: dict[str, Any] = {}
    axes: dict[str, list] = {}
    for key, v in data.items():
        if key in SPEC_KEYS and key != "lr_protocol":
            continue
        if isinstance(v, list):
            if not v:
                raise _err(key, v, "a non-empty list (an axis) or a single value")
            axes[key] = v
        elif isinstance(v, Mapping):
            raise _err(key, "a table", "a value or a list of values")
        else:
            fixed[key] = v
    for p in axes.get("lr_protocol", [fixed.get("lr_protocol", "fixed")]):
        if p not in PROTOCOLS:
            s = suggest(str(p), PROTOCOLS)
            hint = f" (did you mean {s!r}?)" if s else ""
            raise _err("lr_protocol", p, ", ".join(PROTOCOLS) + hint)
    for key in ("seeds", "seed"):
        if key in axes:
            raise _err(key, axes[key], "a single integer (seeds are not an axis)")
    return fixed, axes


def _zip_groups(zips: Any, axes: Mapping[str, list]) -> list[list[str]]:
    """The validated ``zip`` groups: disjoint groups of two or more axes of equal length."""
    if not isinstance(zips, list) or not all(isinstance(z, list) for z in zips):
        raise _err("zip", zips, 'a list of lists of axis names, e.g. [["m", "n"]]')
    zipped: list[list[str]] = []
    seen: set[str] = set()
    for z in zips:
        if len(z) < 2:
            raise _err("zip", z, "groups of at least two axis names")
        for k in z:
            if not isinstance(k, str) or k not in axes:
                raise _err("zip", k, "names of list-valued fields in this spec (axes)")
            if k in seen:
                raise _err("zip", k, "each axis in at most one zip group")
            seen.add(k)
        lengths = {len(axes[k]) for k in z}
        if len(lengths) != 1:
            raise _err("zip", z, "axes of equal length (" + ", ".join(
                f"{k} has {len(axes[k])}" for k in z) + ")")
        zipped.append(list(z))
    return zipped


def _variants(variants: Any) -> list[Mapping[str, Any]]:
    """The validated ``variants``: tables of single config values (and ``lr_protocol``)."""
    if not isinstance(variants, list) or not variants or not all(
        isinstance(v, Mapping) for v in variants
    ):
        raise _err("variants", variants, "a non-empty list of tables ([[variants]] blocks)")
    for v in variants:
        for k, val in v.items():
            _check_key(k, "variants: ")
            if k in SPEC_KEYS and k != "lr_protocol":
                raise _err(f"variants.{k}", val, "config fields and lr_protocol only")
            if isinstance(val, list | Mapping):
                raise _err(f"variants.{k}", val, "a single value")
    return variants


def _excludes(excludes: Any) -> list[Mapping[str, Any]]:
    """The validated ``exclude`` conditions: non-empty tables keyed by known fields."""
    if not isinstance(excludes, list) or not all(isinstance(x, Mapping) for x in excludes):
        raise _err("exclude", excludes, "a list of tables, e.g. [{ optimizer = \"sgd\" }]")
    for x in excludes:
        if not x:
            raise _err("exclude", x, "non-empty tables")
        for k in x:
            _check_key(k, "exclude: ")
    return excludes


def _check_repeats(axes: Mapping[str, list], zipped: list[list[str]]) -> None:
    """No axis repeats a value, and no zip group repeats a combination of values."""
    in_zip = {k for z in zipped for k in z}
    for k, vals in axes.items():
        if k not in in_zip and len({repr(x) for x in vals}) != len(vals):
            raise _err(k, vals, "a list without repeated values")
    for z in zipped:
        tuples = list(zip(*(axes[k] for k in z), strict=True))
        if len({repr(t) for t in tuples}) != len(tuples):
            raise _err("zip", z, "zipped axes without repeated value combinations")


def _dimensions(axes: Mapping[str, list], zipped: list[list[str]],
                variants: list[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """The grid's factors, each a list of field assignments: one per zip group, one per free
    axis, and the variants."""
    dims: list[list[dict[str, Any]]] = []
    for z in zipped:
        dims.append([dict(zip(z, vals, strict=True)) for vals in zip(*(axes[k] for k in z),
                                                                  strict=True)])
    in_zip = {k for z in zipped for k in z}
    for k, vals in axes.items():
        if k not in in_zip:
            dims.append([{k: v} for v in vals])
    dims.append([dict(v) for v in variants])
    return dims


def _expand(fixed: Mapping[str, Any], axes: Mapping[str, list], zipped: list[list[str]],
            variants: list[Mapping[str, Any]], excludes: list[Mapping[str, Any]]) -> list[Point]:
    """The grid points: the product of the factors, minus exclusions and duplicate conditions."""
    points: list[Point] = []
    keys_seen: set[tuple[str, str]] = set()
    dims = _dimensions(axes, zipped, variants)
    size = math.prod(len(d) for d in dims)
    if size > MAX_POINTS:  # refused before validating a million configs one by one
        names = ", ".join([*axes][:4]) or "variants"
        raise SaddleInputError(f"spec: {names}: the grid has {size} points; allowed: at most "
                               f"{MAX_POINTS} (split the sweep, or use zip)")
    for combo in itertools.product(*dims):
        values = dict(fixed)
        labels: list[tuple[str, Any]] = []
        for part in combo:
            values.update(part)
            labels.extend(part.items())
        if any(_matches(values, x) for x in excludes):
            continue
        protocol = values.pop("lr_protocol", "fixed")
        if protocol not in PROTOCOLS:
            raise _err("lr_protocol", protocol, ", ".join(PROTOCOLS))
        config = Config.from_dict(values)
        key = (config.config_hash(), protocol)
        if key in keys_seen:  # fields that do not apply were nulled: same condition
            continue
        keys_seen.add(key)
        points.append(Point(config, protocol, tuple(labels)))
    if not points:
        raise SaddleInputError(
            "spec: exclude: every grid point is excluded; allowed: at least one point left")
    return points


def _matches(values: Mapping[str, Any], cond: Mapping[str, Any]) -> bool:
    for k, want in cond.items():
        have = values.get(k, FIELDS[k].default if k in FIELDS else None)
        options = want if isinstance(want, list) else [want]
        if have not in options:
            return False
    return True
