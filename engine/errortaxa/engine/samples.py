"""Columnar sample batches: what the engine classifies."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
from errortaxa.engine.errors import InvalidInput, Location


class SampleError(InvalidInput):
    """A sample that cannot be classified; names the sample index (0-based) and the field."""

    code = "INVALID_SAMPLE"

    def __init__(self, index: int, field: str, reason: str) -> None:
        self.index = index
        super().__init__(reason, Location(sample=index, field=field))

    @property
    def field(self) -> str:
        return str(self.location.field)


class ClassOutOfRange(SampleError):
    """A class id outside the vocabulary."""

    code = "CLASS_OUT_OF_RANGE"


def csr_take(offsets: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR rows ``rows`` (int array, repeats allowed), in that order: (offsets, values)."""
    starts = offsets[rows]
    sizes = offsets[rows + 1] - starts
    new_offsets = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes, out=new_offsets[1:])
    gather = np.repeat(starts - new_offsets[:-1], sizes) + np.arange(new_offsets[-1], dtype=np.int64)
    return new_offsets, values[gather]


class IndexedNames(Sequence[str]):
    """Names picked from a base list without copying: ``names[i] == base[picks[i]]``."""

    def __init__(self, names: Sequence[str], picks: np.ndarray) -> None:
        picks = np.asarray(picks, dtype=np.int64)
        if isinstance(names, IndexedNames):
            picks = names.picks[picks]
            names = names.base
        self.base: Sequence[str] = names
        self.picks: np.ndarray = picks

    def __len__(self) -> int:
        return int(self.picks.shape[0])

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> IndexedNames: ...
    def __getitem__(self, i: int | slice) -> str | IndexedNames:
        if isinstance(i, slice):
            return IndexedNames(self.base, self.picks[i])
        return self.base[int(self.picks[i])]

    def __iter__(self) -> Iterator[str]:
        base = self.base
        return (base[k] for k in self.picks.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=False))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable base list: unhashable like a list

    def __repr__(self) -> str:
        return f"IndexedNames({list(self)!r})"


@dataclass(frozen=True)
class SampleBatch:
    """N samples; label sets are stored as CSR (``label_offsets[i]:label_offsets[i+1]``)."""

    target: np.ndarray  # int32[N]
    pred: np.ndarray  # int32[N]
    label_offsets: np.ndarray  # int64[N+1]
    label_values: np.ndarray  # int32[M]
    problematic: np.ndarray  # bool[N]
    images: Sequence[str] | None = None
    ids: Sequence[str] | None = None

    def __len__(self) -> int:
        return int(self.target.shape[0])

    @classmethod
    def from_lists(
        cls,
        *,
        target: Sequence[int] | np.ndarray,
        labels: Sequence[Sequence[int]],
        pred: Sequence[int] | np.ndarray,
        problematic: Sequence[bool] | np.ndarray | None = None,
        images: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> SampleBatch:
        """Build a batch from Python lists (label sets as lists of class indices)."""
        n = len(target)
        for field, column in (("labels", labels), ("pred", pred), ("problematic", problematic),
                              ("images", images), ("ids", ids)):
            if column is not None and len(column) != n:
                raise SampleError(min(len(column), n), field, f"has {len(column)} entries for {n} samples")
        sizes = np.fromiter((len(s) for s in labels), dtype=np.int64, count=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        values = np.fromiter((c for s in labels for c in s), dtype=np.int64, count=int(offsets[-1]))
        return cls.from_arrays(
            target=np.asarray(target), pred=np.asarray(pred), label_offsets=offsets, label_values=values,
            problematic=None if problematic is None else np.asarray(problematic, dtype=bool),
            images=images, ids=ids,
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        target: np.ndarray,
        pred: np.ndarray,
        label_offsets: np.ndarray,
        label_values: np.ndarray,
        problematic: np.ndarray | None = None,
        images: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> SampleBatch:
        """Build a batch from columns, converting dtypes (no copy where they already match)."""
        n = int(np.asarray(target).shape[0])
        return cls(
            target=_int32(target, "target"),
            pred=_int32(pred, "pred"),
            label_offsets=np.ascontiguousarray(label_offsets, dtype=np.int64),
            label_values=_int32(label_values, "labels"),
            problematic=np.zeros(n, dtype=bool) if problematic is None else np.asarray(problematic, dtype=bool),
            images=images,
            ids=ids,
        )

    def slice(self, start: int, stop: int) -> SampleBatch:
        """Samples ``start:stop`` as a batch of their own (label values are views, offsets rebased)."""
        lo, hi = int(self.label_offsets[start]), int(self.label_offsets[stop])
        return SampleBatch(
            target=self.target[start:stop], pred=self.pred[start:stop],
            label_offsets=self.label_offsets[start : stop + 1] - lo, label_values=self.label_values[lo:hi],
            problematic=self.problematic[start:stop],
            images=None if self.images is None else self.images[start:stop],
            ids=None if self.ids is None else self.ids[start:stop],
        )

    def take(self, rows: np.ndarray, pred: np.ndarray | None = None) -> SampleBatch:
        """The samples at ``rows`` (repeats allowed), optionally with other predictions."""
        rows = np.asarray(rows, dtype=np.int64)
        offsets, values = csr_take(self.label_offsets, self.label_values, rows)
        return SampleBatch(
            target=self.target[rows], pred=self.pred[rows] if pred is None else _int32(pred, "pred"),
            label_offsets=offsets, label_values=values, problematic=self.problematic[rows],
            images=None if self.images is None else IndexedNames(self.images, rows),
            ids=None if self.ids is None else IndexedNames(self.ids, rows),
        )

    def labels_of(self, i: int) -> list[int]:
        """The label set of sample i."""
        return self.label_values[self.label_offsets[i] : self.label_offsets[i + 1]].tolist()

    def label_rows(self) -> np.ndarray:
        """For each entry of ``label_values``, the index of the sample it belongs to."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.label_offsets))

    def validate(self, num_classes: int) -> None:
        """Raise SampleError for the first malformed sample (shapes, class ranges)."""
        n = len(self)
        if self.pred.shape != (n,):
            raise SampleError(min(n, self.pred.shape[0]), "pred", f"has {self.pred.shape[0]} entries for {n}")
        if self.problematic.shape != (n,):
            raise SampleError(0, "problematic", f"has {self.problematic.shape[0]} entries for {n} samples")
        if self.label_offsets.shape != (n + 1,) or self.label_offsets[0] != 0 or \
                self.label_offsets[-1] != self.label_values.shape[0] or np.any(np.diff(self.label_offsets) < 0):
            raise SampleError(0, "labels", "label offsets do not describe the label values")
        for field, column in (("images", self.images), ("ids", self.ids)):
            if column is not None and len(column) != n:
                raise SampleError(min(len(column), n), field, f"has {len(column)} entries for {n} samples")
        for field, values in (("target", self.target), ("pred", self.pred)):
            bad = np.flatnonzero((values < 0) | (values >= num_classes))
            if bad.size:
                i = int(bad[0])
                raise ClassOutOfRange(i, field, f"class id {int(values[i])} is outside 0..{num_classes - 1}")
        bad = np.flatnonzero((self.label_values < 0) | (self.label_values >= num_classes))
        if bad.size:
            j = int(bad[0])
            i = int(np.searchsorted(self.label_offsets, j, side="right") - 1)
            raise ClassOutOfRange(i, "labels",
                                  f"class id {int(self.label_values[j])} is outside 0..{num_classes - 1}")


def _int32(values: np.ndarray, field: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        if array.size and array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0):
            array = array.astype(np.int64)
        elif array.size:
            raise SampleError(0, field, f"must hold integer class ids, got {array.dtype}")
    too_big = array.size and (array.max() > np.iinfo(np.int32).max or array.min() < np.iinfo(np.int32).min)
    if too_big:
        raise SampleError(int(np.argmax(np.abs(array))), field, "class id does not fit in 32 bits")
    return np.ascontiguousarray(array, dtype=np.int32)
