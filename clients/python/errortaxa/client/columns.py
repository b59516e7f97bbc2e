"""Samples and predictions as numpy columns, and their protobuf form (packed repeated fields).

Used by the client to build requests and by the server to read them, so both sides agree on
the encoding (CSR label sets, optional columns either empty or N long).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from errortaxa.v1 import samples_pb2

IntColumn = Sequence[int] | np.ndarray


@dataclass(frozen=True)
class Samples:
    """N samples as columns; label sets as CSR (``label_values[label_offsets[i]:label_offsets[i+1]]``).

    ``evidence`` holds optional per-sample OOV evidence (JSON-able objects or JSON strings, None
    where absent); ``embeddings`` an optional float32 [N, D] matrix.
    """

    target: np.ndarray
    pred: np.ndarray
    label_offsets: np.ndarray
    label_values: np.ndarray
    problematic: np.ndarray | None = None
    images: Sequence[str] | None = None
    ids: Sequence[str] | None = None
    evidence: Sequence[Any] | None = None
    embeddings: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.target.shape[0])

    @classmethod
    def build(
        cls,
        *,
        target: IntColumn,
        pred: IntColumn,
        labels: Sequence[Sequence[int]] | None = None,
        label_offsets: IntColumn | None = None,
        label_values: IntColumn | None = None,
        problematic: Sequence[bool] | np.ndarray | None = None,
        images: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        evidence: Sequence[Any] | None = None,
        embeddings: np.ndarray | Sequence[Sequence[float]] | None = None,
    ) -> Samples:
        """Columns from lists or numpy arrays. Give label sets either as ``labels`` (a list of
        lists) or as CSR ``label_offsets`` + ``label_values``; neither means every set is empty.
        Lengths are checked by the server, which names the field and sample index."""
        target_arr = np.asarray(target, dtype=np.int64)
        if labels is not None:
            if label_offsets is not None or label_values is not None:
                raise ValueError("give labels either as lists or as label_offsets + label_values")
            sizes = np.fromiter((len(s) for s in labels), dtype=np.int64, count=len(labels))
            offsets = np.zeros(len(labels) + 1, dtype=np.int64)
            np.cumsum(sizes, out=offsets[1:])
            values = np.fromiter((c for s in labels for c in s), dtype=np.int64, count=int(offsets[-1]))
        elif label_offsets is not None:
            offsets = np.asarray(label_offsets, dtype=np.int64)
            values = np.asarray(label_values if label_values is not None else [], dtype=np.int64)
        else:
            offsets = np.zeros(0, dtype=np.int64)
            values = np.asarray(label_values if label_values is not None else [], dtype=np.int64)
        return cls(
            target=target_arr,
            pred=np.asarray(pred, dtype=np.int64),
            label_offsets=offsets,
            label_values=values,
            problematic=None if problematic is None else np.asarray(problematic, dtype=bool),
            images=images,
            ids=ids,
            evidence=evidence,
            embeddings=None if embeddings is None else np.asarray(embeddings, dtype=np.float32),
        )

    @classmethod
    def of(cls, batch: Any) -> Samples:
        """Duck-typed conversion of an engine ``SampleBatch`` (or anything with the same columns)."""
        if isinstance(batch, Samples):
            return batch
        return cls(
            target=np.asarray(batch.target),
            pred=np.asarray(batch.pred),
            label_offsets=np.asarray(batch.label_offsets),
            label_values=np.asarray(batch.label_values),
            problematic=getattr(batch, "problematic", None),
            images=getattr(batch, "images", None),
            ids=getattr(batch, "ids", None),
        )

    def slice(self, start: int, stop: int) -> Samples:
        """Samples start..stop-1 (label offsets rebased to 0)."""
        n = len(self)
        stop = min(stop, n)
        if self.label_offsets.shape[0] == n + 1:
            lo, hi = int(self.label_offsets[start]), int(self.label_offsets[stop])
            offsets = self.label_offsets[start : stop + 1] - lo
            values = self.label_values[lo:hi]
        else:
            offsets, values = self.label_offsets, self.label_values

        def cut(column: Any) -> Any:
            return None if column is None else column[start:stop]

        return Samples(
            target=self.target[start:stop],
            pred=self.pred[start:stop],
            label_offsets=offsets,
            label_values=values,
            problematic=cut(self.problematic),
            images=cut(self.images),
            ids=cut(self.ids),
            evidence=cut(self.evidence),
            embeddings=cut(self.embeddings),
        )

    def to_proto(self) -> samples_pb2.SampleColumns:
        """The packed-column message."""
        msg = samples_pb2.SampleColumns(
            target=_ints(self.target),
            pred=_ints(self.pred),
            label_offsets=_ints(self.label_offsets),
            label_values=_ints(self.label_values),
        )
        if self.problematic is not None:
            flags = np.asarray(self.problematic, dtype=bool)
            if flags.any():  # empty means none is problematic
                msg.problematic.extend(flags.tolist())
        if self.images is not None:
            msg.images.extend(self.images)
        if self.ids is not None:
            msg.ids.extend(self.ids)
        if self.evidence is not None:
            msg.oov.evidence_json.extend(_json_text(e) for e in self.evidence)
        if self.embeddings is not None:
            msg.oov.embeddings.CopyFrom(float_matrix(self.embeddings))
        return msg


def _ints(values: np.ndarray | Sequence[int]) -> list[int]:
    # tolist() then extend is the fastest way into a packed repeated field
    return np.asarray(values).tolist()


def _json_text(value: Any) -> str:
    import json

    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def float_matrix(values: np.ndarray | Sequence[Sequence[float]]) -> samples_pb2.FloatMatrix:
    """A float32 [rows, cols] matrix as a FloatMatrix message."""
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-d matrix, got shape {array.shape}")
    return samples_pb2.FloatMatrix(rows=array.shape[0], cols=array.shape[1], values=array.ravel().tolist())


def matrix_array(msg: samples_pb2.FloatMatrix) -> np.ndarray:
    """A FloatMatrix as a float32 [rows, cols] array (raises ValueError on a size mismatch)."""
    values = np.array(msg.values, dtype=np.float32)
    if msg.rows < 0 or msg.cols < 0 or values.shape[0] != msg.rows * msg.cols:
        raise ValueError(f"has {values.shape[0]} values for {msg.rows} x {msg.cols}")
    return values.reshape(msg.rows, msg.cols)


def dataset_predictions(
    dataset: str,
    *,
    pred: IntColumn | None = None,
    logits: np.ndarray | None = None,
    images: Sequence[str] | None = None,
    offset: int = 0,
) -> samples_pb2.DatasetPredictions:
    """The message for predictions on a dataset the server holds (top-1 ids or logits)."""
    if (pred is None) == (logits is None):
        raise ValueError("give exactly one of pred and logits")
    msg = samples_pb2.DatasetPredictions(dataset=dataset, offset=offset)
    if pred is not None:
        msg.pred.extend(_ints(pred))
    else:
        msg.logits.CopyFrom(float_matrix(np.asarray(logits)))
    if images is not None:
        msg.images.extend(images)
    return msg
