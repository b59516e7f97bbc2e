"""One model's predictions as read from a file, and their top-1 class ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol

import numpy as np
from errortaxa.engine.inputs.errors import InputError, InputNeedsMore
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.text import PathLike, range_text
from errortaxa.engine.inputs.validation import validation_images
from errortaxa.engine.samples import SampleBatch


@dataclass(frozen=True, eq=False)
class Predictions:
    """Predictions by row: ``scores`` (int[N] class ids, or [N, C] scores whose argmax is the top-1)
    from the field ``key`` of ``path``, and the image of each row.

    ``images`` is :func:`validation_images` itself when the rows are the validation files in order,
    None when the rows carry no image name. ``samples``: the file's own samples when its records
    carry their labels (JSONL samples), else None.
    """

    path: str
    format: str
    key: str
    scores: np.ndarray
    images: Sequence[str] | None
    samples: SampleBatch | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0]) if self.scores.ndim else 0

    @property
    def validation_order(self) -> bool:
        """Whether row i is validation image i."""
        return self.images is validation_images()

    def top1(self, num_classes: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Top-1 class ids (int32) of every row or of ``rows``; errors name the key, row and image."""
        if rows is None:
            return top1(self.path, self.key, self.scores, _Names(self.images, None), num_classes)
        return top1(self.path, self.key, self.scores[rows], _Names(self.images, rows), num_classes)

    def with_labels(self, labels: LabeledImages | None, num_classes: int = 1000) -> tuple[SampleBatch, int]:
        """The samples: the file's own when it carries labels, else the rows whose image has
        ``labels`` (in file order) with their top-1; and the number of rows left out for lack of
        labels. Predictions without labels of their own need ``labels`` (InputNeedsMore)."""
        if self.samples is not None:
            return self.samples, 0
        if labels is None:
            raise InputNeedsMore(self.path, f"{self.format} predictions carry no labels: give a label set "
                                 "(--labels on the command line)")
        if self.images is None:
            raise InputError(self.path, "rows without image names cannot be joined with a label set")
        pred = self.top1(num_classes)
        rows = labels.indices_of(self.images)
        keep = rows >= 0
        return labels.take(rows[keep]).to_batch(pred[keep]), int(len(rows) - np.count_nonzero(keep))


class RowNames(Protocol):
    """Anything that gives the image name of a row (for error messages)."""

    def __getitem__(self, row: int, /) -> str: ...


class _Names:
    """Row names of a selection (row j is file row ``rows[j]``) for error messages."""

    def __init__(self, names: Sequence[str] | None, rows: np.ndarray | None) -> None:
        self.names, self.rows = names, rows

    def __getitem__(self, j: int) -> str:
        row = j if self.rows is None else int(self.rows[j])
        return f"row {row}" if self.names is None else str(self.names[row])


def top1(path: PathLike, key: str, scores: np.ndarray, names: RowNames, num_classes: int) -> np.ndarray:
    """Top-1 class ids from ids or [N, num_classes] scores; errors name the key, row and image."""
    def fail(row: int, reason: str) -> NoReturn:
        raise InputError(path, reason, where=f"key '{key}' row {row} ({names[row]})")

    kind = scores.dtype.kind
    if scores.ndim == 1:
        if kind not in "iu":
            raise InputError(path, f"1-D predictions must be integer class ids, not {scores.dtype}",
                             field=key)
        bad = np.flatnonzero((scores < 0) | (scores >= num_classes))
        if bad.size:
            fail(int(bad[0]), f"class id {int(scores[bad[0]])} is outside {range_text(num_classes)}")
        return scores.astype(np.int32)
    if scores.ndim == 2:
        if kind not in "fiu":
            raise InputError(path, f"scores must be numbers, got {scores.dtype}", field=key)
        if scores.shape[1] != num_classes:
            raise InputError(path, f"scores must be [N, {num_classes}], got {list(scores.shape)}", field=key)
        if kind == "f":
            finite = np.isfinite(scores).all(axis=1) if scores.size else np.ones(0, dtype=bool)
            if not finite.all():
                fail(int(np.argmin(finite)), "scores hold NaN or infinity")
        return np.argmax(scores, axis=1).astype(np.int32)
    raise InputError(path, f"must be int[N] or float[N, {num_classes}], got shape {list(scores.shape)}",
                     field=key)
