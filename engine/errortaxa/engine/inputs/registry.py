"""The one registry of input formats, and reading a file by detecting its format.

A format is one module of :mod:`errortaxa.engine.inputs.formats` that calls :func:`register` with
a :class:`Format`: its name, the kind of data it reads (:data:`PREDICTIONS`, :data:`LABELS`,
:data:`SAMPLE_LIST`), its file-name suffixes, a sniff of the file's first bytes, what it expects
(for error messages) and its reader. The modules are found and imported on first use, so adding a
format is adding a module there.

Detection (:func:`detect`): the formats of the kind whose sniff accepts the file's head; when
several do, the one whose suffix the file has; when none does, the one whose suffix it has (its
reader then says exactly what is wrong). Otherwise the file ends in one :class:`InputError` that
names the formats tried and what each expects.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from errortaxa.engine.inputs.errors import InputError
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.tables import Columns
from errortaxa.engine.inputs.text import PathLike, read_bytes
from errortaxa.engine.knowledge.vocabulary import Vocabulary

T = TypeVar("T")
HEAD_BYTES = 4096


@dataclass(frozen=True)
class Kind(Generic[T]):
    """What a reader gives: predictions, a label set or a sample list."""

    name: str


PREDICTIONS: Kind[Predictions] = Kind("predictions")
LABELS: Kind[LabeledImages] = Kind("label set")
SAMPLE_LIST: Kind[frozenset[str]] = Kind("sample list")


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the file: the vocabulary (class names resolve through it;
    default: ImageNet-1k), the column names of tables (and array names of ``.npz`` / keys of torch
    dicts), and for ReaL labels the original validation labels (a target list path or a loaded
    label set; default: looked up beside the file)."""

    vocabulary: Vocabulary | None = None
    columns: Columns = field(default_factory=Columns)
    val_labels: PathLike | LabeledImages | None = None

    @property
    def classes(self) -> Vocabulary:
        """The vocabulary (ImageNet-1k when none was given)."""
        return self.vocabulary if self.vocabulary is not None else Vocabulary.imagenet()

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class Format(Generic[T]):
    """One input format. ``sniff`` gets the file's first bytes (up to 4096); ``expects`` says in
    a few words what a file of the format holds; ``carries_labels``: its predictions come with
    their own label sets."""

    name: str
    kind: Kind[T]
    suffixes: tuple[str, ...]
    expects: str
    sniff: Callable[[bytes], bool]
    read: Callable[[str, ReadOptions], T]
    carries_labels: bool = False


_FORMATS: list[Format[Any]] = []
_loaded = False


def register(fmt: Format[T]) -> Format[T]:
    """Add a format (its name unique within its kind); returns it."""
    if any(f.name == fmt.name and f.kind == fmt.kind for f in _FORMATS):
        raise ValueError(f"input format '{fmt.name}' ({fmt.kind.name}) is registered twice")
    _FORMATS.append(fmt)
    return fmt


def formats(kind: Kind[T]) -> list[Format[T]]:
    """The formats of a kind, by name."""
    global _loaded
    if not _loaded:
        package = __name__.rsplit(".", 1)[0] + ".formats"
        for module in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent / "formats")])):
            importlib.import_module(f"{package}.{module}")
        _loaded = True
    return sorted((f for f in _FORMATS if f.kind == kind), key=lambda f: f.name)


def suffixes(kind: Kind[Any]) -> tuple[str, ...]:
    """Every file-name suffix of the formats of a kind (lower case, with the dot)."""
    return tuple(s for f in formats(kind) for s in f.suffixes)


def detect(path: PathLike, kind: Kind[T]) -> Format[T]:
    """The format of a file, from its content and its suffix (see the module docstring)."""
    candidates = formats(kind)
    head = read_bytes(path, HEAD_BYTES)
    name = os.fspath(path).lower()
    by_suffix = [f for f in candidates if name.endswith(f.suffixes)]
    sniffed = [f for f in candidates if f.sniff(head)]
    if len(sniffed) > 1:
        sniffed = [f for f in sniffed if f in by_suffix] or sniffed
    if len(sniffed) == 1:
        return sniffed[0]
    if not sniffed and len(by_suffix) == 1:
        return by_suffix[0]
    tried = sniffed or candidates
    problem = "ambiguous" if len(sniffed) > 1 else "unknown"
    raise InputError(path, f"{problem} {kind.name} format; tried " +
                     "; ".join(f"{f.name} ({f.expects})" for f in tried))


def recognised(path: PathLike, kind: Kind[Any]) -> bool:
    """Whether a format of the kind recognises the file from its content (not only its suffix)."""
    head = read_bytes(path, HEAD_BYTES)
    return any(f.sniff(head) for f in formats(kind))


def read(path: PathLike, kind: Kind[T], options: ReadOptions | None = None) -> T:
    """Read a file of the kind in its detected format."""
    return detect(path, kind).read(os.fspath(path), options or ReadOptions())


def read_predictions(path: PathLike, options: ReadOptions | None = None) -> Predictions:
    """A model's predictions in any registered predictions format."""
    return read(path, PREDICTIONS, options)


def read_labels(path: PathLike, options: ReadOptions | None = None) -> LabeledImages:
    """A label set in any registered label-set format."""
    return read(path, LABELS, options)


def read_sample_list(path: PathLike) -> frozenset[str]:
    """The image names of a sample list in any registered sample-list format."""
    return read(path, SAMPLE_LIST)
