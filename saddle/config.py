"""The run configuration: every field, its default, and its validation.

A :class:`Config` describes one experimental condition: a landscape, a noise model, an
optimizer with its hyperparameters, an initialization, an escape criterion, and which seeds
to run. :meth:`Config.from_dict` is the only way user input becomes a config; it checks every
field before any computation and raises :class:`~saddle.errors.ConfigError` naming the field,
the bad value and what is allowed.

The fields are the core fields below plus those of the registered components
(:mod:`saddle.registry`): the landscape family, the noise model and the optimizer each own
theirs. Normalization fills component defaults (``learning_rate=None`` becomes the
optimizer's default; a component may also override core defaults it names, e.g. the linear
network's ``init = "random"``, for fields the user did not give) and sets fields that do not
apply to the chosen components, basis, init or criterion to ``None``, so that two configs
describing the same experiment have the same :meth:`Config.config_hash`.
"""

from __future__ import annotations

import hashlib
import json
import math
import stat
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# Importing the component packages registers the built-in components.
from . import landscapes, noise, optimizers  # noqa: F401
from .errors import ConfigError, SaddleInputError, suggest
from .fields import FieldSpec, choice_field, float_field, int_field
from .registry import FAMILIES, LANDSCAPES, NOISES, OPTIMIZERS

__all__ = ["Config", "FIELDS", "FieldSpec", "core_defaults", "load_toml", "numba_unsupported",
           "stream_id", "MAX_CONFIG_BYTES"]

INITS = ("saddle", "random")
CRITERIA = ("projection", "loss", "alignment")
DTYPES = ("float32", "float64")
RNGS = ("pcg3d", "threefry")
BACKENDS = ("auto", "jax", "numba")
NOISE_STREAMS = ("independent", "common")

_SHAPE = [
    int_field("m", 64, "rows of the parameter W (D = m*n)", "landscape", lo=1),
    int_field("n", 64, "columns of the parameter W", "landscape", lo=1),
    int_field("escape_rank", 1, "number r of escape modes (Hessian eigenvalue -gamma)",
              "landscape", lo=1),
]
_LANDSCAPE_SEED = int_field("landscape_seed", 0, "seed of the landscape draw (bases, W*, bulk "
                            "placement)", "landscape", lo=0, hi=2**32 - 1)
_AFTER = [
    # initialization
    choice_field("init", "saddle", INITS, "W0 = W* (saddle) or W* + random", "init"),
    float_field("init_scale", 0.01, "random init: entries N(0, init_scale^2)", "init", lo=0),
    float_field("init_escape", 0.0, "initial escape coordinate a0 along the first escape "
                "direction", "init"),
    # escape criterion
    choice_field("escape", "projection", CRITERIA, "escape criterion", "escape"),
    float_field("radius", 1.0, "projection: escape once ||Pi_esc(W - W*)||_F >= radius",
                "escape", lo=0, lo_open=True),
    float_field("loss_drop", 0.01, "loss: escape once f(W) <= f(W*) - loss_drop", "escape",
                lo=0, lo_open=True),
    float_field("alignment", 0.5, "alignment: escape once the landscape's alignment with its "
                "first teacher mode (0 on the plateau, 1 learned) reaches this", "escape",
                lo=0, hi=1, lo_open=True),
    int_field("max_steps", 10000, "step budget; runs that reach it are censored", "escape",
              lo=1, hi=10**9),
    float_field("divergence_factor", 1000.0, "a run has diverged once f(W_t) - f(W*) > "
                "divergence_factor * S, S = |f(W_0) - f(W*)| + escape loss scale + noise loss "
                "scale (see docs/config.md), or f turns non-finite; checked before escape",
                "escape", lo=0, lo_open=True),
    float_field("max_loss", 1e8, "absolute backstop: a run whose loss exceeds this has "
                "diverged too", "escape", lo=0, lo_open=True),
    # seeds and numerics
    int_field("seed", 0, "first seed", "run", lo=0, hi=2**31 - 1),
    int_field("seeds", 1, "number of seeds: seed, seed+1, ...", "run", lo=1, hi=10**6),
    choice_field("dtype", "float32", DTYPES, "floating-point precision", "run"),
    choice_field("rng", "pcg3d", RNGS, "noise generator of the JAX engine: counter-based pcg3d "
                 "hash, or jax.random's Threefry", "run"),
    choice_field("noise_streams", "independent", NOISE_STREAMS, "independent: each run's "
                 "init and noise draw from (seed, stream id of its condition); common: from "
                 "the seed alone, the same noise field across conditions (JAX engine only)",
                 "run"),
    choice_field("backend", "auto", BACKENDS, "engine: numba kernels (element-wise optimizers, "
                 "coherent basis, Gaussian noise), JAX, or auto (the faster one, as measured)",
                 "run"),
]

# Core fields whose meaning depends on another field's value; elsewhere they become None.
_CONDITIONAL = {
    "init_scale": lambda c: c["init"] == "random",
    "radius": lambda c: c["escape"] == "projection",
    "loss_drop": lambda c: c["escape"] == "loss",
    "alignment": lambda c: c["escape"] == "alignment",
}

# Fields that identify seeds, not the experimental condition.
SEED_FIELDS = ("seed", "seeds")

# Per-run scalars of the core (the components declare theirs as ``traced``).
CORE_TRACED = ("init_scale", "init_escape", "radius", "loss_drop", "alignment", "max_loss",
               "divergence_factor")

# Fields left out of a run's stream id (:func:`stream_id`): they decide when a run stops,
# how it is executed or which seeds run, never the path W_0, W_1, ... itself. So raising
# max_steps or the radius extends a run exactly, and a run's path is the same alone or in a
# batch, on resume, and whichever backend value picked its engine.
STREAM_EXCLUDED = ("seed", "seeds", "backend", "max_steps", "max_loss", "divergence_factor",
                   "escape", "radius", "loss_drop", "alignment", "noise_streams")


def _family_field(reg) -> FieldSpec:
    return choice_field(reg.family, reg.default, reg.names(), reg.help, reg.family)


class _Fields(Mapping):
    """Every config field by name, in order: recomputed when a component registers."""

    def __init__(self):
        self._cache: tuple[tuple, dict[str, FieldSpec]] | None = None

    def _table(self) -> dict[str, FieldSpec]:
        key = tuple(reg.version for reg in FAMILIES)
        if self._cache is None or self._cache[0] != key:
            table: list[FieldSpec] = [_family_field(LANDSCAPES), *_SHAPE]
            table += [*LANDSCAPES.fields().values(), _LANDSCAPE_SEED]
            for reg in (NOISES, OPTIMIZERS):
                table += [_family_field(reg), *reg.fields().values()]
            table += _AFTER
            self._cache = (key, {f.name: f for f in table})
        return self._cache[1]

    def __getitem__(self, name: str) -> FieldSpec:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


FIELDS: Mapping[str, FieldSpec] = _Fields()


def _components(values: Mapping[str, Any]) -> list:
    return [reg[values[reg.family]] for reg in FAMILIES]


# The core fields a component's ``defaults`` may override: all but the family choices.
_CORE_OVERRIDABLE = frozenset(f.name for f in (*_SHAPE, _LANDSCAPE_SEED, *_AFTER))


def core_defaults(comp) -> dict[str, Any]:
    """The core fields a component overrides while it is chosen (its ``defaults`` beyond its
    own fields), e.g. linear_network's ``init = "random"``. A value None means "derived":
    the component's ``normalize`` fills it from the other values."""
    own = set(comp.field_names)
    out = {k: v for k, v in comp.defaults.items() if k not in own}
    bad = sorted(set(out) - _CORE_OVERRIDABLE)
    if bad:
        raise TypeError(f"{comp.name}: defaults for {bad}, which are neither its own fields "
                        f"nor core fields it may override ({sorted(_CORE_OVERRIDABLE)})")
    return out


def _normalize(values: dict[str, Any], given: set[str]) -> None:
    """Component defaults in (for fields not ``given``), fields of unchosen components out.

    A component's defaults may also name core fields (:func:`core_defaults`): they replace
    the core default when the user did not give the field, before the inapplicable core
    fields are nulled (:data:`_CONDITIONAL`, in :func:`_drop_inapplicable`), so a default
    ``escape = "loss"`` keeps ``loss_drop`` and drops ``radius``.
    """
    for reg, comp in zip(FAMILIES, _components(values), strict=True):
        own = set(comp.field_names)
        for name in reg.fields():
            if name not in own:
                values[name] = None
            elif name not in given and name in comp.defaults:
                values[name] = comp.defaults[name]
        for name, value in core_defaults(comp).items():
            if name not in given:
                values[name] = None if value is None else FIELDS[name].coerce(value)
        comp.normalize(values)


# The largest finite value of each run dtype (numpy.finfo(dtype).max).
DTYPE_MAX = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}


def _check_dtype_range(v: dict[str, Any]) -> None:
    """Refuse float fields that overflow the run's dtype before anything runs.

    The rule is per field and deliberately simple: every float field must satisfy
    |value| <= sqrt(max) of the dtype (float32: 1.8e19, float64: 1.3e154), because the loss
    and the noise statistics square it (gamma^2, sigma^2, bulk_scale * x^2, init_escape^2);
    ``max_loss``, only compared with the loss, may go up to the dtype's max itself. A value
    beyond that turned the first step into inf or NaN and the run into a silent "diverged".
    """
    big = DTYPE_MAX[v["dtype"]]
    for name, spec in FIELDS.items():
        x = v.get(name)
        if spec.kind != "float" or x is None:
            continue
        limit = big if name == "max_loss" else math.sqrt(big)
        if abs(x) > limit:
            how = ("its largest value" if name == "max_loss" else
                   f"the square root of its largest value {big:.3g}: the loss squares it")
            hint = "or dtype = 'float64'" if v["dtype"] == "float32" else None
            raise ConfigError(name, x, f"|{name}| <= {limit:.3g} in {v['dtype']} ({how})", hint)


def _check_consistency(v: dict[str, Any]) -> None:
    _check_dtype_range(v)
    r_max = min(v["m"], v["n"])
    if v["escape_rank"] > r_max:
        raise ConfigError(
            "escape_rank", v["escape_rank"], f"an integer in [1, min(m, n)] = [1, {r_max}]"
        )
    if v["m"] * v["n"] > 2**31 - 1:
        raise ConfigError("m", v["m"], f"m*n <= {2**31 - 1} (got m*n = {v['m'] * v['n']})")
    _check_alignment(v)
    for comp in _components(v):
        comp.check(v)
    if v["backend"] == "numba":
        why = numba_unsupported(v)
        if why:
            raise ConfigError("backend", "numba", f"'jax' or 'auto' here ({why})")


def _check_alignment(v: dict[str, Any]) -> None:
    """The alignment criterion needs a landscape that defines an alignment."""
    if v["escape"] == "alignment" and not LANDSCAPES[v["landscape"]].alignment:
        have = [ls.name for ls in LANDSCAPES if ls.alignment]
        raise ConfigError("escape", "alignment", "'projection' or 'loss' for landscape "
                          f"{v['landscape']!r} (alignment is defined for: {', '.join(have)})")


def _drop_inapplicable(values: dict[str, Any]) -> None:
    for name, applies in _CONDITIONAL.items():
        if not applies(values):
            values[name] = None
    for comp in _components(values):
        for name in comp.field_names:
            if values[name] is not None and not comp.applies(name, values):
                values[name] = None


def numba_unsupported(values: Mapping[str, Any]) -> str | None:
    """Why the numba kernels cannot run a config (given as a dict of values), or None."""
    if values.get("noise_streams") == "common":
        return ("noise_streams = 'common' needs the JAX engine's counter-based noise; numba "
                "draws each run's noise sequentially")
    if values.get("escape") == "alignment":
        return "the numba kernels check the projection and loss criteria, not alignment"
    if OPTIMIZERS[values["optimizer"]].numba_code is None:
        have = [o.name for o in OPTIMIZERS if o.numba_code is not None]
        return f"numba runs {', '.join(have)}, not {values['optimizer']}"
    why = LANDSCAPES[values["landscape"]].numba_unsupported(values)
    if why:
        return why
    if not NOISES[values["noise"]].numba:
        have = [nz.name for nz in NOISES if nz.numba]
        return f"numba runs noise {', '.join(have)}, not {values['noise']}"
    return None


class Config:
    """One experimental condition, immutable. Build it with :meth:`from_dict`.

    Every field of :data:`FIELDS` is an attribute; fields that do not apply are None.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        # Internal: values must already be validated and normalized (use from_dict).
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_values":
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"Config has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is immutable; use Config.replace")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Config({inner})"

    def __reduce__(self):
        return (Config, (self._values,))

    def __dir__(self):
        return [*super().__dir__(), *self._values]

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
            # None means "unset": the field's default (for component fields, the component's).
            v = raw.get(name)
            if v is None:
                v = spec.default
            values[name] = None if v is None else spec.coerce(v)
        _normalize(values, {k for k, v in raw.items() if v is not None})
        _check_consistency(values)
        _drop_inapplicable(values)
        return cls(values)

    def replace(self, **changes: Any) -> Config:
        """A validated copy with some fields changed (unset optimizer fields re-default)."""
        d = self.to_dict()
        if "optimizer" in changes and changes["optimizer"] != self.optimizer:
            for k in OPTIMIZERS.fields():
                d.pop(k)
        for k in self._core_defaulted():
            d.pop(k)  # re-defaulted (or re-derived) under the new values
        d.update(changes)
        return Config.from_dict(d)

    def _core_defaulted(self) -> list[str]:
        """The core fields that hold the value their component's default gives them here
        (:func:`core_defaults`): :meth:`replace` treats them as unset, so that changing
        the landscape restores the core defaults and changing ``teacher_scale`` re-derives
        a derived ``loss_drop``. An explicit value equal to that default is treated alike."""
        names = [k for comp in self.components() for k in core_defaults(comp)]
        if not names:
            return []
        auto = Config.from_dict({k: v for k, v in self._values.items() if k not in names})
        return [k for k in names if auto._values[k] == self._values[k]]

    def to_dict(self) -> dict[str, Any]:
        """Every field, in declaration order; non-applicable fields are None."""
        return dict(self._values)

    def condition_dict(self) -> dict[str, Any]:
        """The fields that define the experimental condition (all but the seeds)."""
        d = self.to_dict()
        for k in SEED_FIELDS:
            d.pop(k)
        return d

    def config_hash(self) -> str:
        """Content hash of the normalized condition (seeds excluded), 16 hex digits.

        Only the fields that apply (not None) enter it, so registering a new component,
        whose fields are None in every other config, leaves existing hashes unchanged.
        """
        return _hash({k: v for k, v in self.condition_dict().items() if v is not None})

    def run_key(self, seed: int) -> str:
        """Content hash identifying one run: this condition and one seed."""
        return _hash({"config_hash": self.config_hash(), "seed": int(seed)})

    def stream_id(self) -> int:
        """This condition's 64-bit noise stream id (see :func:`stream_id`)."""
        return stream_id(self)

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))

    @property
    def D(self) -> int:
        """The number of parameters."""
        return LANDSCAPES[self.landscape].dimension(self)

    def components(self) -> tuple:
        """The chosen (landscape, noise, optimizer) specs."""
        return tuple(_components(self._values))

    def traced_fields(self) -> tuple[str, ...]:
        """The per-run scalar fields of this config: the core's and the components'."""
        names = list(CORE_TRACED)
        for comp in self.components():
            names += [k for k in comp.traced if k not in names]
        return tuple(names)


def stream_id(config: Config) -> int:
    """The 64-bit stream id of a config's condition: the one place it is computed.

    A SHA-256 of every applying field except :data:`STREAM_EXCLUDED` (stable across
    processes and machines). With ``noise_streams = "independent"`` each run's init and noise
    keys derive from (seed, stream id), so two conditions never share draws; with
    ``"common"`` the engines ignore it and derive the keys from the seed alone.
    """
    d = {k: v for k, v in config.to_dict().items()
         if v is not None and k not in STREAM_EXCLUDED}
    return int(_hash(d), 16)


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


MAX_CONFIG_BYTES = 1 << 20  # a config or spec file is a few lines of TOML


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a dict, with one-line errors for missing or malformed files."""
    p = Path(path)
    try:
        info = p.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            # /dev/zero, a FIFO, a terminal: reading would never end or would block.
            raise SaddleInputError(f"config: {str(p)!r} is not a regular file; allowed: a "
                                   "TOML file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise SaddleInputError(f"config: {str(p)!r} has {info.st_size} bytes; allowed: a "
                                   f"TOML file of at most {MAX_CONFIG_BYTES} bytes")
        with p.open("rb") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:  # grew since stat
            raise SaddleInputError(f"config: {str(p)!r} is larger than {MAX_CONFIG_BYTES} "
                                   "bytes; allowed: a small TOML file")
    except FileNotFoundError:
        raise SaddleInputError(f"config: file {str(p)!r} not found") from None
    except IsADirectoryError:
        raise SaddleInputError(f"config: {str(p)!r} is a directory; allowed: a TOML file") from None
    except OSError as e:
        raise SaddleInputError(f"config: cannot read {str(p)!r}: {e.strerror}") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise SaddleInputError(f"config: {str(p)!r} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise SaddleInputError(f"config: {str(p)!r} is not valid TOML: {e}") from None
    except RecursionError:  # deeply nested arrays or tables
        raise SaddleInputError(f"config: {str(p)!r} nests too deeply; allowed: a flat table "
                               "of fields") from None
    return data
