"""Samples and predictions as numpy columns, and their protobuf form (packed repeated fields).

Used by the client to build requests and by the server to read them, so both sides agree on
the encoding (CSR label sets, optional columns either empty or N long).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from errortaxa.v1 import samples_pb2
from errortaxa.v1.codec import extend_ints, fill_column, fill_matrix

IntColumn = Sequence[int] | np.ndarray
#: The keyword names of the OOV inputs (Client.classify, Samples.build, dataset_predictions).
OOV_KEYS = ("evidence", "oov_embeddings", "knn_classes", "image_bytes")
#: Per-request inputs of feature providers: provider name -> column name -> one entry per sample (an
#: [N] or [N, W] array or list of floats / ints, or a list of N bytes or str), as ListProviders names them
ProviderInputsLike = Mapping[str, Mapping[str, Any]]


def slice_provider_inputs(inputs: ProviderInputsLike | None, start: int, stop: int) -> ProviderInputsLike | None:
    """Samples start..stop-1 of every column."""
    if inputs is None:
        return None
    return {name: {column: values[start:stop] for column, values in columns.items()}
            for name, columns in inputs.items()}


def fill_provider_inputs(msg: Any, inputs: ProviderInputsLike | None) -> None:
    """Write provider inputs into a request's ``providers`` map (SampleColumns, DatasetPredictions);
    each column goes in the value list of its dtype (float32, int32, bytes, string)."""
    for name, columns in (inputs or {}).items():
        entry = msg.providers[name]
        for column, values in columns.items():
            try:
                fill_column(entry.columns[column], values)
            except ValueError as exc:
                raise ValueError(f"provider_inputs[{name!r}][{column!r}]: {exc}") from None


@dataclass(frozen=True)
class OovInputs:
    """Per-sample inputs of the OOV rule (``samples.oov`` on the wire), each None or one entry per
    sample: ``evidence`` (JSON-able objects or JSON strings answering the test, None where absent),
    ``embeddings`` (float32 [N, D] image embeddings of the server's model; a zero row = none),
    ``knn_classes`` (int32 [N, k] classes of the nearest training images; -1 = padding, a row of
    -1 = none) and ``image_bytes`` (encoded image files; b"" = none)."""

    evidence: Sequence[Any] | None = None
    embeddings: np.ndarray | None = None
    knn_classes: np.ndarray | None = None
    image_bytes: Sequence[bytes] | None = None

    @classmethod
    def build(
        cls,
        *,
        evidence: Sequence[Any] | None = None,
        oov_embeddings: np.ndarray | Sequence[Sequence[float]] | None = None,
        knn_classes: np.ndarray | Sequence[Sequence[int] | None] | None = None,
        image_bytes: Sequence[bytes | None] | None = None,
    ) -> OovInputs | None:
        """None when nothing is given. ``knn_classes`` may be ragged lists (None rows allowed),
        padded with -1; ``image_bytes`` may hold None for samples without bytes."""
        if evidence is None and oov_embeddings is None and knn_classes is None and image_bytes is None:
            return None
        embeddings = None
        if oov_embeddings is not None:
            embeddings = np.asarray(oov_embeddings, dtype=np.float32)
            if embeddings.ndim != 2:
                raise ValueError(f"oov_embeddings must be a 2-d [samples, dim] matrix, got shape {embeddings.shape}")
        return cls(
            evidence=evidence,
            embeddings=embeddings,
            knn_classes=None if knn_classes is None else _int_rows(knn_classes),
            image_bytes=None if image_bytes is None else [b if b is not None else b"" for b in image_bytes],
        )

    def slice(self, start: int, stop: int) -> OovInputs:
        """Samples start..stop-1."""

        def cut(column: Any) -> Any:
            return None if column is None else column[start:stop]

        return OovInputs(cut(self.evidence), cut(self.embeddings), cut(self.knn_classes), cut(self.image_bytes))

    def to_proto(self, msg: samples_pb2.OovEvidence | None = None) -> samples_pb2.OovEvidence:
        """The message (written into ``msg`` when given, e.g. a request's sub-message: no copy)."""
        msg = samples_pb2.OovEvidence() if msg is None else msg
        if self.evidence is not None:
            msg.evidence_json.extend(_json_text(e) for e in self.evidence)
        if self.embeddings is not None:
            fill_matrix(msg.embeddings, self.embeddings)
        if self.image_bytes is not None:
            msg.image_bytes.extend(self.image_bytes)
        if self.knn_classes is not None:
            fill_matrix(msg.knn_classes, self.knn_classes)
        return msg


def oov_inputs(columns: dict[str, Any]) -> OovInputs | None:
    """Pop the OOV keywords (OOV_KEYS) out of ``columns`` into OovInputs (None when there are none)."""
    return OovInputs.build(**{key: columns.pop(key) for key in OOV_KEYS if key in columns})


def _int_rows(rows: np.ndarray | Sequence[Sequence[int] | None]) -> np.ndarray:
    """An int32 [N, k] matrix from a matrix or ragged rows (None = no row), padded with -1."""
    if isinstance(rows, np.ndarray):
        if rows.ndim != 2:
            raise ValueError(f"knn_classes must be a 2-d [samples, k] matrix, got shape {rows.shape}")
        return rows.astype(np.int32, copy=False)
    width = max((len(r) for r in rows if r is not None), default=0)
    out = np.full((len(rows), width), -1, dtype=np.int32)
    for i, row in enumerate(rows):
        if row is not None and len(row):
            out[i, : len(row)] = row
    return out


@dataclass(frozen=True)
class Samples:
    """N samples as columns; label sets as CSR (``label_values[label_offsets[i]:label_offsets[i+1]]``).

    ``providers`` holds the optional per-sample inputs of feature providers by provider name, then
    column name (``{"oov": {"embeddings": array}}``; ListProviders says what each one takes);
    ``oov`` the OOV inputs in the deprecated ``oov`` message (see :class:`OovInputs`).
    """

    target: np.ndarray
    pred: np.ndarray
    label_offsets: np.ndarray
    label_values: np.ndarray
    problematic: np.ndarray | None = None
    images: Sequence[str] | None = None
    ids: Sequence[str] | None = None
    oov: OovInputs | None = None
    providers: ProviderInputsLike | None = None

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
        oov_embeddings: np.ndarray | Sequence[Sequence[float]] | None = None,
        knn_classes: np.ndarray | Sequence[Sequence[int] | None] | None = None,
        image_bytes: Sequence[bytes | None] | None = None,
        provider_inputs: ProviderInputsLike | None = None,
    ) -> Samples:
        """Columns from lists or numpy arrays. Give label sets either as ``labels`` (a list of
        lists) or as CSR ``label_offsets`` + ``label_values``; neither means every set is empty.
        ``evidence``, ``oov_embeddings``, ``knn_classes`` and ``image_bytes`` are the OOV inputs
        (:class:`OovInputs`); ``provider_inputs`` the inputs of feature providers by name
        (``{"oov": {"embeddings": array}}``). Lengths and dtypes are checked by the server, which
        names the field and sample index."""
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
            oov=OovInputs.build(evidence=evidence, oov_embeddings=oov_embeddings, knn_classes=knn_classes,
                                image_bytes=image_bytes),
            providers=provider_inputs,
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
            oov=None if self.oov is None else self.oov.slice(start, stop),
            providers=slice_provider_inputs(self.providers, start, stop),
        )

    def with_oov(self, oov: OovInputs | None) -> Samples:
        """The same samples with other OOV inputs."""
        return dataclasses.replace(self, oov=oov)

    def with_provider_inputs(self, inputs: ProviderInputsLike | None) -> Samples:
        """The same samples with other provider inputs."""
        return dataclasses.replace(self, providers=inputs)

    def to_proto(self, msg: samples_pb2.SampleColumns | None = None) -> samples_pb2.SampleColumns:
        """The packed-column message (written into ``msg`` when given, e.g. a request's
        sub-message: no copy of a large batch)."""
        msg = samples_pb2.SampleColumns() if msg is None else msg
        for name in ("target", "pred", "label_offsets", "label_values"):
            extend_ints(msg, name, getattr(self, name))
        if self.problematic is not None:
            flags = np.asarray(self.problematic, dtype=bool)
            if flags.any():  # empty means none is problematic
                extend_ints(msg, "problematic", flags)
        if self.images is not None:
            msg.images.extend(self.images)
        if self.ids is not None:
            msg.ids.extend(self.ids)
        if self.oov is not None:
            self.oov.to_proto(msg.oov)
        fill_provider_inputs(msg, self.providers)
        return msg


def _json_text(value: Any) -> str:
    import json

    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def dataset_predictions(
    dataset: str,
    *,
    pred: IntColumn | None = None,
    logits: np.ndarray | None = None,
    images: Sequence[str] | None = None,
    offset: int = 0,
    oov: OovInputs | None = None,
    provider_inputs: ProviderInputsLike | None = None,
) -> samples_pb2.DatasetPredictions:
    """The message for predictions on a dataset the server holds (top-1 ids or logits), with
    optional provider inputs (``{"oov": {"embeddings": array}}``) or OOV inputs (one row per prediction)."""
    if (pred is None) == (logits is None):
        raise ValueError("give exactly one of pred and logits")
    msg = samples_pb2.DatasetPredictions(dataset=dataset, offset=offset)
    if pred is not None:
        msg.pred.extend(np.asarray(pred).tolist())  # tolist() then extend: the fastest way in
    else:
        fill_matrix(msg.logits, np.asarray(logits, dtype=np.float32))
    if images is not None:
        msg.images.extend(images)
    if oov is not None:
        oov.to_proto(msg.oov)
    fill_provider_inputs(msg, provider_inputs)
    return msg
