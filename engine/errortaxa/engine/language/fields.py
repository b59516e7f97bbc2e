"""The base model and field types that the schema and the predicate modules share."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
ClassRef = Annotated[int | str, Field(description="class index, wnid (n02084071) or synset name (dog.n.01)")]
SynsetRef = Annotated[str, Field(description="WordNet 3.0 noun: synset name (dog.n.01) or wnid (n02084071)")]


class Strict(BaseModel):
    """Base model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
