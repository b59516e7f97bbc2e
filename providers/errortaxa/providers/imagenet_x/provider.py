"""The ``imagenet_x`` provider: test ``factor`` (``params: {factor: NAME}``, NAME one of the 16
factors) holds where the image's ImageNet-X annotation carries the factor; images without an
annotation (or samples without an image name) are "not evaluated"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from errortaxa.engine import FeatureResult
from errortaxa.engine.providers.annotations import AnnotationTable
from errortaxa.providers.imagenet_x.params import FactorParams
from pydantic import ValidationError

TEST = "factor"
class ImagenetXProvider:
    """Answers ``factor`` from an annotation table."""

    name = "imagenet_x"

    def __init__(self, table: AnnotationTable) -> None:
        self.table = table
        self._index = {image: i for i, image in enumerate(table.images)}

    def evaluate(self, test: str, params: Mapping[str, Any], batch: Any, rows: np.ndarray) -> FeatureResult:
        if test != TEST:
            raise ValueError(f"the imagenet_x provider has no test {test!r} (it has: {TEST})")
        try:
            factor = FactorParams.model_validate(dict(params or {})).factor
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "params"
            raise ValueError(f"imagenet_x/{TEST} {where}: {problem['msg']}") from None
        if factor not in self.table.columns:
            raise ValueError(f"imagenet_x/{TEST}: the annotations have no factor {factor!r}")
        column = self.table.columns.index(factor)
        rows = np.asarray(rows, np.int64)
        m = int(rows.shape[0])
        images = getattr(batch, "images", None)
        if images is None:
            return FeatureResult.unknown(m, "the samples have no image names")
        found = np.fromiter((self._index.get(str(images[int(r)]).rsplit("/", 1)[-1], -1) for r in rows), np.int64, m)
        known = found >= 0
        holds = np.zeros(m, bool)
        holds[known] = self.table.values[found[known], column]
        reason: list[str | None] = [None if k else "image not annotated by ImageNet-X" for k in known.tolist()]
        evidence: list[Any] = [
            {"factor": factor, "factors": [self.table.columns[j] for j in np.flatnonzero(self.table.values[f])]}
            if h else None for h, f in zip(holds.tolist(), found.tolist(), strict=True)]
        return FeatureResult(holds, known, reason, evidence)
