"""The registry of feature-provider factories.

A distribution adds a provider by declaring its factory (a :class:`ProviderFactory` subclass or
instance) as an entry point of the group ``errortaxa.providers``, named by the provider::

    [project.entry-points."errortaxa.providers"]
    oov = "errortaxa.providers.oov.factory:OOVFactory"

:func:`register` adds one in-process (an application embedding the engine, a test); those come first
and shadow an entry point of the same name.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.features import FeatureProvider, ProviderDeclaration
from errortaxa.engine.providers.factory import ProviderConfigError, ProviderFactory, ProviderUnavailable

GROUP = "errortaxa.providers"

_registered: dict[str, ProviderFactory] = {}
_loaded: dict[str, ProviderFactory] = {}  # entry point value -> its factory


def register(factory: ProviderFactory) -> None:
    """Add ``factory`` under its ``name`` (ValueError when another one is registered under it)."""
    if not factory.name:
        raise ValueError(f"{type(factory).__name__} has no provider name")
    held = _registered.get(factory.name)
    if held is not None and held is not factory:
        raise ValueError(f"a feature provider named '{factory.name}' is already registered ({type(held).__name__})")
    _registered[factory.name] = factory


def unregister(name: str) -> None:
    """Remove the factory :func:`register` added under ``name`` (entry points stay)."""
    _registered.pop(name, None)


def _load(point: EntryPoint) -> ProviderFactory:
    got = _loaded.get(point.value)
    if got is None:
        obj = point.load()
        got = obj() if isinstance(obj, type) else obj
        if not isinstance(got, ProviderFactory):
            raise TypeError(f"entry point {point.name} = {point.value} ({GROUP}) is not a ProviderFactory")
        if got.name != point.name:
            raise TypeError(f"entry point {point.name} = {point.value} ({GROUP}) makes provider '{got.name}'")
        _loaded[point.value] = got
    return got


@lru_cache(maxsize=4)
def _points(search_path: tuple[str, ...]) -> list[EntryPoint]:
    """The group's entry points, by name, as found on ``search_path`` (sys.path: scanned once per path)."""
    return sorted(entry_points(group=GROUP), key=lambda p: p.name)


def factories() -> list[ProviderFactory]:
    """Every factory: the registered ones, then the entry points' by name."""
    points = _points(tuple(sys.path))
    return [*_registered.values(), *(_load(p) for p in points if p.name not in _registered)]


def names() -> list[str]:
    """The provider names of :func:`factories`."""
    return [f.name for f in factories()]


def declarations() -> dict[str, ProviderDeclaration]:
    """What each installed provider accepts, by name (what the compiler checks ``feature:`` against)."""
    return {f.name: f.declaration for f in factories()}


def get(name: str) -> ProviderFactory:
    """The factory of provider ``name``; KeyError naming the installed ones when there is none."""
    for factory in factories():
        if factory.name == name:
            return factory
    raise KeyError(f"no feature provider '{name}' is installed (installed: {', '.join(names()) or 'none'})")


def build(name: str, config: str | Path, taxonomy: CompiledTaxonomy) -> FeatureProvider:
    """Provider ``name`` for ``taxonomy`` from its config file, strictly: ProviderConfigError for an
    unknown provider, a missing or malformed config, ProviderUnavailable (with the reason) where it cannot run."""
    try:
        factory = get(name)
    except KeyError as exc:
        raise ProviderConfigError(str(exc.args[0])) from None
    reason = factory.unavailable()
    if reason is not None:
        raise ProviderUnavailable(f"'{factory.config_option}' {reason}")
    if not Path(config).is_file():
        raise ProviderConfigError(f"{factory.config_option} {config}: no such file")
    return factory.build(config, taxonomy)


def build_all(configs: Mapping[str, str | Path], taxonomy: CompiledTaxonomy) -> dict[str, FeatureProvider]:
    """:func:`build` for every ``{provider name: config file}``."""
    return {name: build(name, path, taxonomy) for name, path in configs.items()}
