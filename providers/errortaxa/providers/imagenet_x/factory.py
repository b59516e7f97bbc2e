"""The factory of the ``imagenet_x`` provider (entry point ``imagenet_x`` of the group
``errortaxa.providers``). ``--imagenet_x-config FILE`` builds it: a YAML/JSON mapping, empty
(``{}``: the installed package's annotations) or with ``annotations: PATH`` (a file in the
package's format). Its annotation table is also a capability the study reads
(:class:`~errortaxa.engine.providers.annotations.AnnotationSource`)."""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path

from errortaxa.engine import FeatureProvider
from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.features import FeatureTestDecl
from errortaxa.engine.providers.annotations import AnnotationTable
from errortaxa.engine.providers.factory import ProviderConfigError, ProviderFactory
from errortaxa.providers.imagenet_x.annotations import MISSING, installed_table, package_file, read_annotations
from errortaxa.providers.imagenet_x.params import FactorParams


class ImagenetXFactory(ProviderFactory):
    """Builds :class:`~errortaxa.providers.imagenet_x.provider.ImagenetXProvider`."""

    name = "imagenet_x"
    summary = "ImageNet-X factors of variation of the validation images: test factor (the factors extra)"
    tests = (FeatureTestDecl("factor", "the image's ImageNet-X annotation carries the factor (an image without "
                                       "annotations: not evaluated)", FactorParams),)

    def unavailable(self) -> str | None:
        return None if package_file() is not None else MISSING

    def annotation_table(self) -> AnnotationTable:
        return installed_table()

    def build(self, config: str | Path, taxonomy: CompiledTaxonomy) -> FeatureProvider:
        """The provider over the annotations the config names (default: the installed package's)."""
        import yaml
        from errortaxa.providers.imagenet_x.provider import ImagenetXProvider

        where = f"{self.config_option} {os.fspath(config)}"
        try:
            settings = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise ProviderConfigError(f"{where}: not YAML: {error}") from None
        if not isinstance(settings, dict) or set(settings) - {"annotations"}:
            raise ProviderConfigError(f"{where}: expected a mapping with at most the key 'annotations'")
        path = settings.get("annotations")
        if path is None:
            return ImagenetXProvider(installed_table())
        if not isinstance(path, str):
            raise ProviderConfigError(f"{where}: annotations: expected a file path")
        full = Path(config).parent / path
        try:
            return ImagenetXProvider(read_annotations(str(full)))
        except ProviderConfigError as error:
            raise ProviderConfigError(f"{where}: {error}") from None

    def taxonomy_key(self, taxonomy: CompiledTaxonomy) -> Hashable:
        """The annotations depend on no taxonomy."""
        return self.name
