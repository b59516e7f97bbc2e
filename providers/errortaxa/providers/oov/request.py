"""The OOV provider bound to one request's per-sample inputs (gRPC; declared in
:mod:`errortaxa.providers.oov.declaration`): embeddings, kNN classes and image bytes, looked at only
for the rows that reach the OOV rule. No torch here."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from errortaxa.engine.features import FeatureResult
from errortaxa.engine.providers.factory import ProviderInputError, RequestInputs
from errortaxa.engine.samples import SampleBatch


@dataclasses.dataclass(frozen=True)
class OovColumns:
    """A request's inputs with, per sample, whether it carries an embedding (a non-zero row), image
    bytes (non-empty) or kNN classes (a class id that is not padding)."""

    inputs: RequestInputs
    has_embedding: np.ndarray
    has_bytes: np.ndarray
    has_knn: np.ndarray

    @classmethod
    def of(cls, inputs: RequestInputs, dim: int) -> OovColumns:
        """The masks of ``inputs``; ProviderInputError when the embeddings are not ``dim``-dimensional
        (the model's)."""
        n = inputs.samples
        none = np.zeros(n, bool)
        emb, knn, data = inputs.get("embeddings"), inputs.get("knn_classes"), inputs.get("image_bytes")
        if emb is not None and emb.shape[1] != dim:
            raise ProviderInputError("embeddings", f"has {emb.shape[1]} columns; this server's OOV model embeds "
                                     f"images in {dim} dimensions", code="EMBEDDING_DIM")
        return cls(
            inputs,
            none if emb is None else np.asarray(emb.any(axis=1)),
            none if data is None else np.fromiter((len(b) > 0 for b in data), bool, count=n),
            none if knn is None else np.asarray((knn >= 0).any(axis=1)),
        )

    def keys(self, images: Sequence[str] | None, rows: np.ndarray) -> tuple[list[str], dict[str, str]]:
        """Per-sample keys for OOVProvider.bind, for the samples ``rows`` (others keep their image
        name): sample i's inputs are keyed "<sample i>" (never by image name, so that two samples of
        one image can carry different inputs), mapped to its image name, looked up on disk when it
        sends neither an embedding nor bytes. A sample that sends only kNN classes and has no image
        name keeps "" (no image)."""
        n = self.has_embedding.shape[0]
        keys = list(images) if images is not None else [""] * n
        names: dict[str, str] = {}
        own = self.has_embedding | self.has_bytes
        for row in rows.tolist():
            name = keys[row]
            if own[row] or (self.has_knn[row] and name):
                key = keys[row] = f"<sample {row}>"
                if name:
                    names[key] = name
        return keys, names


class BoundOOV:
    """The server's OOV provider bound, at evaluation time, to one request's per-sample inputs."""

    name = "oov"

    def __init__(self, provider: Any, columns: OovColumns) -> None:
        self._provider = provider
        self._columns = columns

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray
                 ) -> FeatureResult:
        c = self._columns
        emb, knn_classes, data = (c.inputs.get(name) for name in ("embeddings", "knn_classes", "image_bytes"))
        rows = np.asarray(rows, dtype=np.int64)
        keys, names = c.keys(batch.images, rows)
        embeddings: dict[str, np.ndarray] = {}
        image_bytes: dict[str, bytes] = {}
        knn: dict[str, list[int]] = {}
        for row in rows.tolist():
            key = keys[row]
            if emb is not None and c.has_embedding[row]:
                embeddings[key] = emb[row]
            if data is not None and c.has_bytes[row]:
                image_bytes[key] = data[row]
            if knn_classes is not None and c.has_knn[row] and key:
                classes = knn_classes[row]
                knn[key] = classes[classes >= 0].tolist()
        bound = self._provider.bind(image_bytes=image_bytes, embeddings=embeddings, knn_classes=knn, names=names)
        result: FeatureResult = bound.evaluate(test, params, dataclasses.replace(batch, images=keys), rows)
        return result
