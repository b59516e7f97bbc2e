"""Class vocabularies: class index <-> WordNet id, with display names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

__all__ = ["IMAGENET_CLASSES", "Vocabulary"]

IMAGENET_CLASSES = "imagenet1k_classes.tsv"


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Classes in index order. ``names[i]`` is the first devkit name of class i (``"tench"``),
    ``full_names[i]`` the whole devkit entry (``"tench, Tinca tinca"``).

    Compared and hashed by identity, so it can key caches of per-vocabulary matrices.
    """

    wnids: list[str]
    names: list[str]
    full_names: list[str]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not len(self.wnids) == len(self.names) == len(self.full_names):
            raise ValueError("wnids, names and full_names must have the same length")
        index = {w: i for i, w in enumerate(self.wnids)}
        if len(index) != len(self.wnids):
            dup = sorted({w for w in self.wnids if self.wnids.count(w) > 1})
            raise ValueError(f"duplicate wnids in vocabulary: {dup}")
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.wnids)

    def index(self, wnid: str) -> int:
        """Class index of ``wnid``; KeyError naming it if it is not in the vocabulary."""
        try:
            return self._index[wnid]
        except KeyError:
            raise KeyError(f"{wnid!r} is not a class of this vocabulary") from None

    def __contains__(self, wnid: object) -> bool:
        return wnid in self._index

    @classmethod
    def from_wnids(cls, wnids: Sequence[str], full_names: Sequence[str] | None = None) -> Vocabulary:
        """A vocabulary from wnids and optional comma-separated devkit-style names."""
        full = list(full_names) if full_names is not None else list(wnids)
        return cls(list(wnids), [n.split(",")[0].strip() for n in full], full)

    @classmethod
    def imagenet(cls) -> Vocabulary:
        """The 1000 ImageNet-1k (ILSVRC-2012) classes, index 0 = n01440764 (tench)."""
        return _imagenet()


@lru_cache(maxsize=1)
def _imagenet() -> Vocabulary:
    text = resources.files("errortaxa.engine.knowledge.data").joinpath(IMAGENET_CLASSES).read_text("utf-8")
    wnids: list[str] = []
    full: list[str] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        wnid, names = line.split("\t")
        wnids.append(wnid)
        full.append(names)
    return Vocabulary.from_wnids(wnids, full)
