"""The parameters of the ``imagenet_x`` provider's test ``factor``, declared once: the factory
declares them to the compiler and the server, the provider validates with them."""

from __future__ import annotations

from typing import Literal

from errortaxa.providers.imagenet_x.annotations import FACTORS
from pydantic import BaseModel, ConfigDict, Field

Factor = Literal[FACTORS]  # type: ignore[valid-type]


class FactorParams(BaseModel):
    """The parameters of test ``factor``."""

    model_config = ConfigDict(extra="forbid")

    factor: Factor = Field(description="the ImageNet-X factor of variation the image must carry")
