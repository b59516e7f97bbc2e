"""The feature providers of a server: every registered factory (to bind the per-sample inputs a
request sends) and, for those given a config file (``--oov-config FILE``, ...), the providers built
for each taxonomy version. A provider that cannot run here answers "not evaluated" with the reason."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from errortaxa.engine import CompiledTaxonomy, FeatureProvider
from errortaxa.engine.providers import UnavailableProvider, registry
from errortaxa.engine.providers.factory import ProviderConfigError, ProviderFactory, ProviderUnavailable
from errortaxa.server.config import ConfigError

log = logging.getLogger("errortaxa.server")


class ServerProviders:
    def __init__(self, configs: Mapping[str, Path]) -> None:
        self.factories: dict[str, ProviderFactory] = {f.name: f for f in registry.factories()}
        unknown = sorted(set(configs) - set(self.factories))
        if unknown:
            raise ConfigError(f"no feature provider {', '.join(unknown)} is installed "
                              f"(installed: {', '.join(self.factories) or 'none'})")
        self.configs = dict(configs)

    def build(self, compiled: CompiledTaxonomy) -> dict[str, FeatureProvider]:
        """The configured providers for ``compiled``; ConfigError for a malformed config."""
        out: dict[str, FeatureProvider] = {}
        for name, path in self.configs.items():
            try:
                out[name] = registry.build(name, path, compiled)
            except ProviderUnavailable as exc:
                log.warning("feature provider unavailable", extra={"provider": name, "reason": str(exc)})
                out[name] = UnavailableProvider(name, f"'{name}' provider unavailable: {exc}")
            except (ProviderConfigError, FileNotFoundError) as exc:
                raise ConfigError(str(exc)) from None
        return out
