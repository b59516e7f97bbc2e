"""A capability a provider factory may have: a table of per-image annotations (e.g. ImageNet-X's
factors of variation) it answers its tests from, handed to the applications as data.

A study sets the errors against such a table (``errortaxa study --factors NAME``) by asking the
registry for the factory of provider NAME and, when it is an :class:`AnnotationSource`, for its
table: it never imports the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from errortaxa.engine.providers.factory import ProviderConfigError, ProviderUnavailable


@dataclass(frozen=True)
class AnnotationTable:
    """Binary annotations of images: ``values[i, j]`` says image ``images[i]`` (a file name) carries
    annotation ``columns[j]``; ``source`` says where they come from and under which licence."""

    provider: str
    images: list[str]
    columns: list[str]
    values: np.ndarray  # bool[len(images), len(columns)]
    source: str

    def rows_of(self, names: list[str]) -> np.ndarray:
        """int64: the table's row of each image name, -1 for an image without annotations."""
        index = {name: i for i, name in enumerate(self.images)}
        return np.fromiter((index.get(n, -1) for n in names), np.int64, len(names))


@runtime_checkable
class AnnotationSource(Protocol):
    """A provider factory that hands out its annotation table (no config needed)."""

    name: str

    def annotation_table(self) -> AnnotationTable:
        """The annotations; ProviderUnavailable where they cannot be read here."""
        ...


def annotation_table(name: str) -> AnnotationTable:
    """The annotation table of the installed provider ``name``: ProviderConfigError when no such
    provider is installed or it has no annotation table, ProviderUnavailable where it cannot run."""
    from errortaxa.engine.providers import registry

    factory = next((f for f in registry.factories() if f.name == name), None)
    if factory is None:
        installed = ", ".join(f.name for f in registry.factories()) or "none"
        raise ProviderConfigError(f"no feature provider '{name}' is installed (installed: {installed})")
    if not isinstance(factory, AnnotationSource):
        raise ProviderConfigError(f"feature provider '{name}' has no annotation table")
    reason = factory.unavailable()
    if reason is not None:
        raise ProviderUnavailable(f"provider '{name}' {reason}")
    return factory.annotation_table()
