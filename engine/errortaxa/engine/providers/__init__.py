"""Feature providers: the interface the engine evaluates (:mod:`.feature`), and how the applications
find, build, configure and transport providers (:mod:`.factory`, :mod:`.registry`).

Only :mod:`.feature` is re-exported here: the compiler imports this package, and the factory
interface refers to the compiled taxonomy.
"""

from errortaxa.engine.providers.feature import FeatureProvider, FeatureResult, UnavailableProvider

__all__ = ["FeatureProvider", "FeatureResult", "UnavailableProvider"]
