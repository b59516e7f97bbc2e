"""Studies of many models at once: statistics tables, comparisons, plots and reports."""

from .stats import McNemarResult, clopper_pearson, mcnemar_exact
from .study import StudyResult, run_study

__all__ = ["McNemarResult", "StudyResult", "clopper_pearson", "mcnemar_exact", "run_study"]
