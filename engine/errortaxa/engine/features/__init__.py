"""Sample-level features below the predicates: the interface the engine evaluates
(:mod:`.protocol`: FeatureProvider, FeatureResult) and what each provider declares it accepts
(:mod:`.declarations`). Finding, building and transporting providers is ``errortaxa.engine.providers``,
above the compiler."""

from errortaxa.engine.features.declarations import (
    FeatureTestDecl,
    InputColumn,
    NoParams,
    ProviderDeclaration,
    check_feature,
)
from errortaxa.engine.features.protocol import FeatureProvider, FeatureResult, UnavailableProvider

__all__ = [
    "FeatureProvider",
    "FeatureResult",
    "FeatureTestDecl",
    "InputColumn",
    "NoParams",
    "ProviderDeclaration",
    "UnavailableProvider",
    "check_feature",
]
