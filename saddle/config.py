"""The run configuration: every field, its default, and its validation, in one place.

A :class:`Config` describes one experimental condition: a landscape, a noise model, an
optimizer with its hyperparameters, an initialization, an escape criterion, and which seeds
to run. :meth:`Config.from_dict` is the only way user input becomes a config; it checks every
field before any computation and raises :class:`~saddle.errors.ConfigError` naming the field,
the bad value and what is allowed.

Normalization fills optimizer-dependent defaults (``learning_rate=None`` becomes the
optimizer's default) and sets fields that do not apply to the chosen optimizer, noise model,
basis, init or criterion to ``None``, so that two configs describing the same experiment have
the same :meth:`Config.config_hash`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, SaddleInputError, suggest

__all__ = [
    "Config",
    "FIELDS",
    "OPTIMIZERS",
    "OPTIMIZER_DEFAULTS",
    "load_toml",
    "FieldSpec",
]

OPTIMIZERS = ("adamw", "muon", "mano", "sgd", "sign_descent", "normalized_gd")
NOISES = ("none", "isotropic", "opnorm", "lowrank", "kronecker", "student_t")
BULKS = ("constant", "uniform", "marchenko_pastur", "power_law")
BASES = ("coherent", "incoherent", "partial")
INITS = ("saddle", "random")
SADDLE_POINTS = ("zero", "random")
CRITERIA = ("projection", "loss")
DTYPES = ("float32", "float64")
RNGS = ("pcg3d", "threefry")
BACKENDS = ("auto", "jax", "numba")
ORTHOGONALIZERS = ("newton_schulz", "polar")
SCALINGS = ("keller", "moonlight", "none")
VARIANTS = ("v1", "v2")

# Optimizer hyperparameters and the optimizer's own defaults. A field missing from an
# optimizer's entry does not apply to it and is normalized to None.
#
# Learning rates and epsilons follow the reference (../shared/reference/optimizers.md):
# AdamW 1e-3, Muon 0.02, Mano 1e-3. The baselines have no reference default; the lab picks
# values that escape the default landscape in budget. Weight decay defaults to 0 for every
# optimizer: at W* = 0 decay is a restoring force towards the saddle and changes the very
# curvature under study. Set the reference values (AdamW 1e-2, Mano 0.1) explicitly to
# study that effect.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adamw": dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0),
    "muon": dict(
        learning_rate=0.02,
        momentum=0.95,
        nesterov=True,
        ns_steps=5,
        orthogonalizer="newton_schulz",
        scaling="keller",
        eps=1e-7,
        weight_decay=0.0,
    ),
    "mano": dict(
        learning_rate=1e-3,
        momentum=0.95,
        nesterov=None,  # variant-dependent: v1 off, v2 on
        variant="v1",
        eps=1e-8,
        weight_decay=0.0,
    ),
    "sgd": dict(learning_rate=0.1, momentum=0.0, nesterov=False, weight_decay=0.0),
    "sign_descent": dict(learning_rate=1e-3, momentum=0.0, weight_decay=0.0),
    "normalized_gd": dict(learning_rate=0.02, momentum=0.0, eps=1e-12, weight_decay=0.0),
}

OPTIMIZER_FIELDS = (
    "learning_rate",
    "b1",
    "b2",
    "eps",
    "weight_decay",
    "momentum",
    "nesterov",
    "ns_steps",
    "orthogonalizer",
    "scaling",
    "variant",
)


# --------------------------------------------------------------------------------------
# Field checks. Each takes the raw value and returns the coerced one or raises ConfigError.


def _is_bool(v):
    return isinstance(v, bool)


def _to_int(name: str, v: Any, lo: int | None = None, hi: int | None = None) -> int:
    allowed = "an integer" + _range_text(lo, hi)
    if _is_bool(v):
        raise ConfigError(name, v, allowed)
    if isinstance(v, str):
        try:
            v = float(v.strip()) if any(c in v for c in ".eE") else int(v.strip())
        except ValueError:
            raise ConfigError(name, v, allowed) from None
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            raise ConfigError(name, v, allowed)
        v = int(v)
    if not isinstance(v, int):
        raise ConfigError(name, v, allowed)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(name, v, allowed)
    return v


def _range_text(lo, hi, lo_open=False, hi_open=False) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" {'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f" {'<' if hi_open else '<='} {hi}"
    return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _to_float(
    name: str,
    v: Any,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    allowed = "a finite number" + _range_text(lo, hi, lo_open, hi_open)
    if _is_bool(v):
        raise ConfigError(name, v, allowed)
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise ConfigError(name, v, allowed) from None
    if not isinstance(v, int | float):
        raise ConfigError(name, v, allowed)
    v = float(v)
    if not math.isfinite(v):
        raise ConfigError(name, v, allowed)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(name, v, allowed)
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(name, v, allowed)
    return v


def _to_choice(name: str, v: Any, choices: tuple[str, ...]) -> str:
    allowed = "one of " + ", ".join(choices)
    if not isinstance(v, str) or v not in choices:
        hint = None
        if isinstance(v, str):
            s = suggest(v, choices)
            hint = f"did you mean {s!r}?" if s else None
        raise ConfigError(name, v, allowed, hint)
    return v


def _to_bool(name: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return v.strip().lower() in ("true", "1", "yes")
    raise ConfigError(name, v, "true or false")


@dataclass(frozen=True)
class FieldSpec:
    """One config field: its default, a coercing check and a one-line description."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    help: str
    group: str
    choices: tuple[str, ...] | None = None
    kind: str = "float"  # int, float, str, bool: what the CLI parses

    def coerce(self, value: Any) -> Any:
        return self.check(value)


def _f(name, default, help, group, **kw):
    return FieldSpec(name, default, lambda v: _to_float(name, v, **kw), help, group)


def _i(name, default, help, group, **kw):
    return FieldSpec(name, default, lambda v: _to_int(name, v, **kw), help, group, kind="int")


def _c(name, default, choices, help, group):
    return FieldSpec(
        name, default, lambda v: _to_choice(name, v, choices), help, group, choices, "str"
    )


def _b(name, default, help, group):
    return FieldSpec(name, default, lambda v: _to_bool(name, v), help, group, kind="bool")


_FIELD_LIST = [
    # landscape
    _i("m", 64, "rows of the parameter W (D = m*n)", "landscape", lo=1),
    _i("n", 64, "columns of the parameter W", "landscape", lo=1),
    _i("escape_rank", 1, "number r of escape modes (Hessian eigenvalue -gamma)", "landscape", lo=1),
    _f("gamma", 0.1, "flatness: escape modes have Hessian eigenvalue -gamma", "landscape", lo=0),
    _c("bulk", "constant", BULKS, "bulk Hessian spectrum", "landscape"),
    _f("bulk_scale", 1.0, "bulk eigenvalue size lambda (the largest for uniform)", "landscape",
       lo=0, lo_open=True),
    _f("bulk_ratio", 0.1, "uniform: lambda_lo/lambda_hi; marchenko_pastur: aspect ratio q",
       "landscape", lo=0, hi=1, lo_open=True),
    _f("bulk_tail", 2.0, "power_law: tail exponent alpha of the bulk density", "landscape",
       lo=0, lo_open=True),
    _f("quartic", 0.0, "quartic cap kappa: + kappa/4 ||W - W*||_F^4", "landscape", lo=0),
    _c("basis", "incoherent", BASES, "eigenbasis P, Q against the coordinate axes", "landscape"),
    _f("mixing", 0.5, "partial basis: rotation strength in [0, 1] (0 coherent, 1 ~ Haar)",
       "landscape", lo=0, hi=1),
    _c("saddle_point", "zero", SADDLE_POINTS, "where the saddle W* sits", "landscape"),
    _f("saddle_point_scale", 1.0, "random W*: entries N(0, scale^2 / n)", "landscape", lo=0),
    _i("landscape_seed", 0, "seed of the landscape (bases, W*, bulk placement)", "landscape",
       lo=0, hi=2**32 - 1),
    # noise
    _c("noise", "isotropic", NOISES, "gradient noise model", "noise"),
    _f("sigma", 0.01, "noise scale (isotropic, kronecker, student_t: per-entry std; "
       "opnorm, lowrank: operator norm)", "noise", lo=0),
    _i("noise_rank", 1, "lowrank: rank k of the noise", "noise", lo=1),
    _f("noise_df", 4.0, "student_t: degrees of freedom (> 2 gives unit-variance entries)",
       "noise", lo=0, lo_open=True),
    _f("noise_zipf", 1.0, "kronecker: Zipf exponent of the row scales", "noise", lo=0),
    # optimizer
    _c("optimizer", "muon", OPTIMIZERS, "optimizer", "optimizer"),
    _f("learning_rate", None, "learning rate eta (default: the optimizer's)", "optimizer",
       lo=0, lo_open=True),
    _f("b1", None, "adamw: first-moment decay", "optimizer", lo=0, hi=1, hi_open=True),
    _f("b2", None, "adamw: second-moment decay", "optimizer", lo=0, hi=1, hi_open=True),
    _f("eps", None, "adamw, mano, muon, normalized_gd: epsilon", "optimizer", lo=0,
       lo_open=True),
    _f("weight_decay", None, "decoupled weight decay lambda (theta <- theta(1 - eta lambda))",
       "optimizer", lo=0),
    _f("momentum", None, "momentum beta/mu (muon: EMA; others: heavy ball)", "optimizer",
       lo=0, hi=1, hi_open=True),
    _b("nesterov", None, "Nesterov momentum", "optimizer"),
    _i("ns_steps", None, "muon: Newton-Schulz iterations", "optimizer", lo=1, hi=100),
    _c("orthogonalizer", None, ORTHOGONALIZERS, "muon: orthogonalizer", "optimizer"),
    _c("scaling", None, SCALINGS, "muon: update scaling convention", "optimizer"),
    _c("variant", None, VARIANTS, "mano: algorithm version", "optimizer"),
    # initialization
    _c("init", "saddle", INITS, "W0 = W* (saddle) or W* + random", "init"),
    _f("init_scale", 0.01, "random init: entries N(0, init_scale^2)", "init", lo=0),
    _f("init_escape", 0.0, "initial escape coordinate a0 along the first escape direction",
       "init"),
    # escape criterion
    _c("escape", "projection", CRITERIA, "escape criterion", "escape"),
    _f("radius", 1.0, "projection: escape once ||Pi_esc(W - W*)||_F >= radius", "escape",
       lo=0, lo_open=True),
    _f("loss_drop", 0.01, "loss: escape once f(W) <= f(W*) - loss_drop", "escape",
       lo=0, lo_open=True),
    _i("max_steps", 10000, "step budget; runs that reach it are censored", "escape", lo=1,
       hi=10**9),
    _f("max_loss", 1e8, "a run whose loss exceeds this (or turns non-finite) has diverged",
       "escape", lo=0, lo_open=True),
    # seeds and numerics
    _i("seed", 0, "first seed", "run", lo=0, hi=2**31 - 1),
    _i("seeds", 1, "number of seeds: seed, seed+1, ...", "run", lo=1, hi=10**6),
    _c("dtype", "float32", DTYPES, "floating-point precision", "run"),
    _c("rng", "pcg3d", RNGS, "noise generator of the JAX engine: counter-based pcg3d hash, "
       "or jax.random's Threefry", "run"),
    _c("backend", "auto", BACKENDS, "engine: numba kernels (element-wise optimizers, coherent "
       "basis, Gaussian noise), JAX, or auto (the faster one, as measured)", "run"),
]

FIELDS: dict[str, FieldSpec] = {f.name: f for f in _FIELD_LIST}

# Fields whose meaning depends on another field's value; elsewhere they normalize to None.
_CONDITIONAL = {
    "bulk_ratio": lambda c: c["bulk"] in ("uniform", "marchenko_pastur"),
    "bulk_tail": lambda c: c["bulk"] == "power_law",
    "mixing": lambda c: c["basis"] == "partial",
    "saddle_point_scale": lambda c: c["saddle_point"] == "random",
    "sigma": lambda c: c["noise"] != "none",
    "noise_rank": lambda c: c["noise"] == "lowrank",
    "noise_df": lambda c: c["noise"] == "student_t",
    "noise_zipf": lambda c: c["noise"] == "kronecker",
    "init_scale": lambda c: c["init"] == "random",
    "radius": lambda c: c["escape"] == "projection",
    "loss_drop": lambda c: c["escape"] == "loss",
}

# Fields that identify seeds, not the experimental condition.
SEED_FIELDS = ("seed", "seeds")


@dataclass(frozen=True)
class Config:
    """One experimental condition. Build it with :meth:`from_dict` or :meth:`make`."""

    m: int
    n: int
    escape_rank: int
    gamma: float
    bulk: str
    bulk_scale: float
    bulk_ratio: float | None
    bulk_tail: float | None
    quartic: float
    basis: str
    mixing: float | None
    saddle_point: str
    saddle_point_scale: float | None
    landscape_seed: int
    noise: str
    sigma: float | None
    noise_rank: int | None
    noise_df: float | None
    noise_zipf: float | None
    optimizer: str
    learning_rate: float
    b1: float | None
    b2: float | None
    eps: float | None
    weight_decay: float
    momentum: float | None
    nesterov: bool | None
    ns_steps: int | None
    orthogonalizer: str | None
    scaling: str | None
    variant: str | None
    init: str
    init_scale: float | None
    init_escape: float
    escape: str
    radius: float | None
    loss_drop: float | None
    max_steps: int
    max_loss: float
    seed: int
    seeds: int
    dtype: str
    rng: str
    backend: str

    # ----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None = None, **overrides: Any) -> Config:
        """Validate and normalize user input into a Config.

        Raises:
            ConfigError: for an unknown key (with the nearest valid name), a value of the
                wrong type or outside its range, or an inconsistent combination.
        """
        raw: dict[str, Any] = {}
        for source in (data or {}), overrides:
            if not isinstance(source, Mapping):
                raise SaddleInputError(
                    f"config: got {type(source).__name__}; allowed: a table of fields"
                )
            for key, value in source.items():
                if not isinstance(key, str) or key not in FIELDS:
                    s = suggest(str(key), FIELDS)
                    hint = f"did you mean {s!r}?" if s else "see 'saddle run --help'"
                    raise ConfigError(str(key), value, "a known config field", hint)
                raw[key] = value

        values: dict[str, Any] = {}
        for name, spec in FIELDS.items():
            # None means "unset": the field's default (for optimizer fields, the optimizer's).
            v = raw.get(name)
            if v is None:
                v = spec.default
            values[name] = None if v is None else spec.coerce(v)
        _fill_optimizer_defaults(values)
        _check_consistency(values)
        for name, applies in _CONDITIONAL.items():
            if not applies(values):
                values[name] = None
        return cls(**values)

    make = from_dict

    def replace(self, **changes: Any) -> Config:
        """A validated copy with some fields changed (unset optimizer fields re-default)."""
        d = self.to_dict()
        if "optimizer" in changes and changes["optimizer"] != self.optimizer:
            for k in OPTIMIZER_FIELDS:
                d.pop(k)
        d.update(changes)
        return Config.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        """Every field, in declaration order; non-applicable fields are None."""
        return dataclasses.asdict(self)

    def condition_dict(self) -> dict[str, Any]:
        """The fields that define the experimental condition (all but the seeds)."""
        d = self.to_dict()
        for k in SEED_FIELDS:
            d.pop(k)
        return d

    def config_hash(self) -> str:
        """Content hash of the normalized condition (seeds excluded), 16 hex digits."""
        return _hash(self.condition_dict())

    def run_key(self, seed: int) -> str:
        """Content hash identifying one run: this condition and one seed."""
        return _hash({"config_hash": self.config_hash(), "seed": int(seed)})

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))

    @property
    def D(self) -> int:
        return self.m * self.n


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fill_optimizer_defaults(values: dict[str, Any]) -> None:
    opt = values["optimizer"]
    defaults = OPTIMIZER_DEFAULTS[opt]
    for k in OPTIMIZER_FIELDS:
        if k not in defaults:
            values[k] = None
        elif values[k] is None:
            values[k] = defaults[k]
    if opt == "mano" and values["nesterov"] is None:
        values["nesterov"] = values["variant"] == "v2"


def _check_consistency(v: dict[str, Any]) -> None:
    r_max = min(v["m"], v["n"])
    if v["escape_rank"] > r_max:
        raise ConfigError(
            "escape_rank", v["escape_rank"], f"an integer in [1, min(m, n)] = [1, {r_max}]"
        )
    if v["noise"] == "lowrank" and v["noise_rank"] > r_max:
        raise ConfigError(
            "noise_rank", v["noise_rank"], f"an integer in [1, min(m, n)] = [1, {r_max}]"
        )
    if v["m"] * v["n"] > 2**31 - 1:
        raise ConfigError("m", v["m"], f"m*n <= {2**31 - 1} (got m*n = {v['m'] * v['n']})")
    if v["backend"] == "numba":
        why = _numba_unsupported(v)
        if why:
            raise ConfigError("backend", "numba", f"'jax' or 'auto' here ({why})")
    if v["escape"] == "loss":
        depth = _loss_depth(v["gamma"], v["quartic"])
        if not v["loss_drop"] < depth:
            raise ConfigError(
                "loss_drop",
                v["loss_drop"],
                f"a number in (0, {depth:.6g}): the landscape's depth gamma^2/(4 quartic)"
                if math.isfinite(depth) and depth > 0
                else "a reachable drop; with gamma = 0 the loss never falls below f(W*), "
                "use escape = 'projection'",
            )


NUMBA_OPTIMIZERS = ("adamw", "sgd", "sign_descent", "normalized_gd", "mano")
NUMBA_NOISES = ("none", "isotropic", "opnorm", "kronecker")


def _numba_unsupported(v: dict[str, Any]) -> str | None:
    """Why the numba kernels cannot run this config, or None."""
    if v["optimizer"] not in NUMBA_OPTIMIZERS:
        return f"numba runs {', '.join(NUMBA_OPTIMIZERS)}, not {v['optimizer']}"
    if v["basis"] != "coherent":
        return "numba runs the coherent basis only"
    if v["noise"] not in NUMBA_NOISES:
        return f"numba runs noise {', '.join(NUMBA_NOISES)}, not {v['noise']}"
    return None


def _loss_depth(gamma: float, quartic: float) -> float:
    """How far below f(W*) the loss can go: gamma^2/(4 kappa), infinite for kappa = 0."""
    if gamma == 0:
        return 0.0
    if quartic == 0:
        return math.inf
    return gamma**2 / (4 * quartic)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a dict, with one-line errors for missing or malformed files."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        raise SaddleInputError(f"config: file {str(p)!r} not found") from None
    except IsADirectoryError:
        raise SaddleInputError(f"config: {str(p)!r} is a directory; allowed: a TOML file") from None
    except OSError as e:
        raise SaddleInputError(f"config: cannot read {str(p)!r}: {e.strerror}") from None
    try:
        return tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise SaddleInputError(f"config: {str(p)!r} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise SaddleInputError(f"config: {str(p)!r} is not valid TOML: {e}") from None
