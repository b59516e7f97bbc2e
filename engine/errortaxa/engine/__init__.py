"""The ErrorTaxa engine: taxonomy YAML -> schema -> compiled rules -> vectorised decisions."""

from errortaxa.engine.compile.compiler import (
    CompiledTaxonomy,
    compile_path,
    compile_taxonomy,
    default_compiled,
)
from errortaxa.engine.features import FeatureProvider, FeatureResult
from errortaxa.engine.language.loader import DEFAULT_TAXONOMY, LoadedTaxonomy, load_taxonomy
from errortaxa.engine.language.problems import Problem, TaxonomyError
from errortaxa.engine.results.decisions import AxisDecisions, Decisions
from errortaxa.engine.results.summary import summarize
from errortaxa.engine.run.cases import CaseResult, run_cases
from errortaxa.engine.run.evaluate import evaluate
from errortaxa.engine.run.explain import Explanation, RuleTrace, explain
from errortaxa.engine.samples import SampleBatch, SampleError
from errortaxa.engine.version import ENGINE_VERSION, __version__

__all__ = [
    "DEFAULT_TAXONOMY",
    "ENGINE_VERSION",
    "AxisDecisions",
    "CaseResult",
    "CompiledTaxonomy",
    "Decisions",
    "Explanation",
    "FeatureProvider",
    "FeatureResult",
    "LoadedTaxonomy",
    "Problem",
    "RuleTrace",
    "SampleBatch",
    "SampleError",
    "TaxonomyError",
    "__version__",
    "compile_path",
    "compile_taxonomy",
    "default_compiled",
    "evaluate",
    "explain",
    "load_taxonomy",
    "run_cases",
    "summarize",
]
