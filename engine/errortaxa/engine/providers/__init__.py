"""Feature providers as the applications find, build, configure and transport them: the factory
interface (:mod:`.factory`) and the registry of installed providers (:mod:`.registry`, entry
points of the group ``errortaxa.providers``). It sits above the compiler; what the engine evaluates
and what a provider declares it accepts is :mod:`errortaxa.engine.features`, below the predicates."""
