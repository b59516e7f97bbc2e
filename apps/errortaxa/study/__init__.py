"""Studies of many models at once: statistics tables, comparisons, plots and reports (the study
extra: pandas, scipy, matplotlib, pyarrow).  Import the submodules: ``errortaxa.study.cli`` (the
commands) loads without the extra."""
