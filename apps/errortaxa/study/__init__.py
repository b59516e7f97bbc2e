"""Studies of many models at once: statistics tables, comparisons, plots and reports."""

from errortaxa.study.stats import McNemarResult, clopper_pearson, mcnemar_exact
from errortaxa.study.study import StudyResult, run_study

__all__ = ["McNemarResult", "StudyResult", "clopper_pearson", "mcnemar_exact", "run_study"]
