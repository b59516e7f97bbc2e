"""What the ``oov`` provider accepts, declared once: its test ``fine_grained_oov`` with its
parameters, and the per-request inputs a gRPC request may send for it (docs/OOV.md). No torch."""

from __future__ import annotations

from errortaxa.engine.features import FeatureTestDecl, InputColumn
from pydantic import BaseModel, ConfigDict, Field

TEST_NAME = "fine_grained_oov"


class FineGrainedOOVParams(BaseModel):
    """The parameters of ``oov.fine_grained_oov``; unset ones take the provider's config."""

    model_config = ConfigDict(extra="forbid")

    knn_k: int | None = Field(None, ge=1, le=1000, description="neighbours of the kNN gate (config `k`, default 10)")
    k: int | None = Field(None, ge=1, le=1000, description="alias of knn_k")
    top: int | None = Field(None, ge=1, le=100, description="proposals listed in the evidence (config `top`)")
    gate: bool = Field(True, description="false: skip the kNN gate (every row with an embedding is scored)")


TESTS = (
    FeatureTestDecl(TEST_NAME, "the error is a fine-grained out-of-vocabulary one: the image shows a WordNet "
                               "class outside the vocabulary, close to the prediction (REFERENCE.md step 6)",
                    FineGrainedOOVParams),
)
INPUTS = (
    InputColumn("embeddings", "float32", "image embeddings of the server's OOV model, one row per sample (a row of "
                                         "zeros: none for that sample); W is the model's dimension", width=0,
                finite=True),
    InputColumn("knn_classes", "int32", "classes of the nearest training images of each sample, nearest first, for "
                                        "the kNN gate (negative: padding; a row of negatives: none)", width=0,
                class_ids=True),
    InputColumn("image_bytes", "bytes", "each sample's encoded image file (JPEG, PNG, ...; empty: none)"),
)
