"""The feature providers of a server: every registered factory (its declaration checks uploaded
taxonomies and the per-sample inputs a request sends, which it binds; ListProviders answers them)
and, for those given a config file (``--oov-config FILE``, ...), the providers built for each
taxonomy version. A provider that cannot run here answers "not evaluated" with the reason."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from errortaxa.engine import CompiledTaxonomy, FeatureProvider
from errortaxa.engine.features import ProviderDeclaration, UnavailableProvider
from errortaxa.engine.providers import registry
from errortaxa.engine.providers.factory import ProviderConfigError, ProviderFactory, ProviderUnavailable
from errortaxa.server.config import ConfigError
from errortaxa.v1 import service_pb2

log = logging.getLogger("errortaxa.server")


class ServerProviders:
    def __init__(self, configs: Mapping[str, Path]) -> None:
        self.factories: dict[str, ProviderFactory] = {f.name: f for f in registry.factories()}
        unknown = sorted(set(configs) - set(self.factories))
        if unknown:
            raise ConfigError(f"no feature provider {', '.join(unknown)} is installed "
                              f"(installed: {', '.join(self.factories) or 'none'})")
        self.configs = dict(configs)

    @property
    def declarations(self) -> dict[str, ProviderDeclaration]:
        """What each installed provider accepts (uploaded taxonomies are compiled against it)."""
        return {name: f.declaration for name, f in self.factories.items()}

    def infos(self) -> list[service_pb2.ProviderInfo]:
        """Each installed provider's declaration as ListProviders answers it."""
        return [provider_info(f.declaration, configured=name in self.configs)
                for name, f in sorted(self.factories.items())]

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


def provider_info(declaration: ProviderDeclaration, *, configured: bool) -> service_pb2.ProviderInfo:
    """The ListProviders entry of one provider: its tests and inputs, and the whole as JSON Schema."""
    d = declaration
    return service_pb2.ProviderInfo(
        name=d.name, summary=d.summary, configured=configured,
        tests=[service_pb2.ProviderTest(name=t.name, description=t.description,
                                        params_schema_json=json.dumps(t.params_schema(), sort_keys=True))
               for t in d.tests],
        inputs=[service_pb2.ProviderInput(name=c.name, dtype=c.dtype, width=-1 if c.width is None else c.width,
                                          description=c.description, finite=c.finite, class_ids=c.class_ids)
                for c in d.inputs],
        schema_json=json.dumps(d.json_schema(), sort_keys=True))
