"""The ErrorTaxa engine: taxonomy YAML -> schema -> compiled rules -> vectorised decisions."""

from .compiler import (
    ENGINE_VERSION,
    CompiledTaxonomy,
    RuleTrace,
    compile_path,
    compile_taxonomy,
    default_compiled,
)
from .decisions import AxisDecisions, Decisions
from .loader import DEFAULT_TAXONOMY, LoadedTaxonomy, load_taxonomy
from .problems import Problem, TaxonomyError
from .providers import FeatureProvider, FeatureResult
from .samples import SampleBatch, SampleError
from .summary import summarize

__all__ = [
    "DEFAULT_TAXONOMY",
    "ENGINE_VERSION",
    "AxisDecisions",
    "CompiledTaxonomy",
    "Decisions",
    "FeatureProvider",
    "FeatureResult",
    "LoadedTaxonomy",
    "Problem",
    "RuleTrace",
    "SampleBatch",
    "SampleError",
    "TaxonomyError",
    "compile_path",
    "compile_taxonomy",
    "default_compiled",
    "load_taxonomy",
    "summarize",
]
