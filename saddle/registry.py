"""Component specs and their registries.

The lab has three kinds of pluggable component: landscape families, noise models and
optimizers. Each concrete component is one :class:`Component` subclass in its own module,
registered in its family's :class:`Registry` when that module is imported. A spec says:

- ``fields``: the config fields it owns (:class:`~saddle.fields.FieldSpec`), and
  ``defaults`` that override a field's default while this component is chosen: its own
  fields, or core fields such as ``init`` and ``escape`` (applied when the user did not
  give them; None means "derived by ``normalize``"; see :func:`saddle.config.core_defaults`);
- ``static``: the fields that change the compiled program (the compile key);
- ``traced``: the per-run scalars, which may differ between the runs of one batch;
- hooks for normalization and cross-field checks, and the family's own methods (how to
  build the JAX object, a numba form where there is one, facts the theory needs).

:class:`saddle.config.Config` is assembled from the registered fields, so the CLI, sweep
specs and the documentation table follow a new component without further edits.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from .fields import FieldSpec

__all__ = ["Component", "Registry", "LANDSCAPES", "NOISES", "OPTIMIZERS", "FAMILIES",
           "import_submodules"]


class Component:
    """The spec of one component. Subclasses set the class attributes below."""

    name: ClassVar[str]
    fields: ClassVar[tuple[FieldSpec, ...]] = ()
    defaults: ClassVar[Mapping[str, Any]] = {}
    static: ClassVar[tuple[str, ...]] = ()
    traced: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    # The family's default choice (one component per family sets it).
    is_default: ClassVar[bool] = False

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def applies(self, field: str, values: Mapping[str, Any]) -> bool:
        """Whether one of this component's fields means something for these values
        (fields that do not apply are normalized to None)."""
        return True

    def normalize(self, values: dict[str, Any]) -> None:
        """Fill values that depend on other values (called after defaults are filled)."""

    def check(self, values: Mapping[str, Any]) -> None:
        """Raise :class:`~saddle.errors.ConfigError` for an inconsistent combination."""

    def static_key(self, config) -> tuple:
        """The part of the compile key this component contributes."""
        return tuple((k, getattr(config, k)) for k in self.static)

    def static_values(self, key: tuple) -> dict[str, Any]:
        return dict(key)


class Registry:
    """The registered components of one family, by name, in registration order."""

    def __init__(self, family: str, help: str):
        self.family = family  # also the config field that chooses the component
        self.help = help
        self._specs: dict[str, Component] = {}
        self.version = 0  # bumped on every change, so derived tables can be cached

    def register(self, spec: Component) -> Component:
        """Add a component; a name may be registered once (unregister it first)."""
        if spec.name in self._specs:
            raise ValueError(f"{self.family} {spec.name!r} is already registered")
        mine = {f.name: f for s in self._specs.values() for f in s.fields}
        for f in spec.fields:
            if f.name in mine and mine[f.name] is not f:
                raise ValueError(
                    f"{self.family} {spec.name!r}: field {f.name!r} is declared differently by "
                    "another component; share one FieldSpec object"
                )
        self._specs[spec.name] = spec
        self.version += 1
        return spec

    def unregister(self, name: str) -> None:
        del self._specs[name]
        self.version += 1

    def __getitem__(self, name: str) -> Component:
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[Component]:
        return iter(self._specs.values())

    @property
    def default(self) -> str | None:
        """The name of the component that declares itself the family's default."""
        return next((s.name for s in self._specs.values() if s.is_default), None)

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def fields(self) -> dict[str, FieldSpec]:
        """Every field some component of this family owns, first declaration first."""
        out: dict[str, FieldSpec] = {}
        for spec in self._specs.values():
            for f in spec.fields:
                out.setdefault(f.name, f)
        return out


LANDSCAPES = Registry("landscape", "landscape family")
NOISES = Registry("noise", "gradient noise model")
OPTIMIZERS = Registry("optimizer", "optimizer")
FAMILIES = (LANDSCAPES, NOISES, OPTIMIZERS)


def import_submodules(package: str, path: Iterable[str]) -> None:
    """Import every module of a component package, in name order, so that a component is
    registered by adding its file alone. (Modules that define no component, such as shared
    helpers, are imported too; that is harmless.)"""
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        importlib.import_module(f"{package}.{info.name}")
