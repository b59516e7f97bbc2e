"""A label set: images with their original target and set of correct labels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain

import numpy as np
from errortaxa.engine.samples import SampleBatch, csr_take


def csr(labels: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """CSR offsets int64[N+1] and values int32[M] of label lists."""
    n = len(labels)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, labels), dtype=np.int64, count=n), out=offsets[1:])
    values = np.fromiter(chain.from_iterable(labels), dtype=np.int32, count=int(offsets[-1]))
    return offsets, values


@dataclass(frozen=True, eq=False)
class LabeledImages:
    """Images with their original target and set of correct labels (CSR), in a fixed order.

    ``skipped`` counts the images of the source left out for lack of any valid label.
    """

    images: list[str]
    target: np.ndarray  # int32[N]
    label_offsets: np.ndarray  # int64[N+1]
    label_values: np.ndarray  # int32[M]
    problematic: np.ndarray  # bool[N]
    skipped: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.images)
        if (self.target.shape, self.problematic.shape, self.label_offsets.shape) != ((n,), (n,), (n + 1,)):
            raise ValueError(f"LabeledImages: columns disagree with {n} images")

    @classmethod
    def from_lists(cls, *, images: Sequence[str], target: Sequence[int], labels: Sequence[Sequence[int]],
                   problematic: Sequence[bool] | None = None, skipped: int = 0,
                   source: str = "") -> LabeledImages:
        """Build from Python lists."""
        offsets, values = csr(labels)
        return cls(
            images=list(images), target=np.asarray(target, dtype=np.int32), label_offsets=offsets,
            label_values=values,
            problematic=np.zeros(len(images), dtype=bool) if problematic is None
            else np.asarray(problematic, dtype=bool),
            skipped=skipped, source=source,
        )

    @classmethod
    def from_batch(cls, batch: SampleBatch, source: str = "") -> LabeledImages:
        """The label set of a batch's samples, named by image (else by id)."""
        images = list(batch.images if batch.images is not None else batch.ids or [])
        return cls(images=images, target=batch.target, label_offsets=batch.label_offsets,
                   label_values=batch.label_values, problematic=batch.problematic, source=source)

    def __len__(self) -> int:
        return len(self.images)

    @cached_property
    def index(self) -> dict[str, int]:
        """Row of each image."""
        return {image: i for i, image in enumerate(self.images)}

    def index_of(self, image: str) -> int:
        """Row of ``image``; KeyError when it has no labels here."""
        try:
            return self.index[image]
        except KeyError:
            raise KeyError(f"{image!r} has no labels in {self.source or 'this label set'}") from None

    def indices_of(self, images: Iterable[str]) -> np.ndarray:
        """Rows (int64) of ``images``, -1 for those without labels."""
        get = self.index.get
        return np.fromiter((get(image, -1) for image in images), dtype=np.int64)

    def labels_of(self, i: int) -> list[int]:
        """The label set of row i."""
        return self.label_values[self.label_offsets[i] : self.label_offsets[i + 1]].tolist()

    def take(self, rows: Sequence[int] | np.ndarray) -> LabeledImages:
        """The rows ``rows`` (indices, or a boolean mask), in that order."""
        index = np.asarray(rows)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False)
        offsets, values = csr_take(self.label_offsets, self.label_values, index)
        return LabeledImages(
            images=[self.images[i] for i in index.tolist()], target=self.target[index],
            label_offsets=offsets, label_values=values, problematic=self.problematic[index],
            skipped=self.skipped, source=self.source,
        )

    def to_batch(self, pred: Sequence[int] | np.ndarray) -> SampleBatch:
        """A SampleBatch of all rows with the given top-1 predictions."""
        return SampleBatch.from_arrays(
            target=self.target, pred=np.asarray(pred), label_offsets=self.label_offsets,
            label_values=self.label_values, problematic=self.problematic, images=self.images,
        )
