"""The notebook API: classify arrays or a pandas DataFrame and get a DataFrame back.

pandas is not a dependency of the engine: it is imported when a function here runs (it comes with
the study extra, or ``pip install pandas``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from errortaxa.engine.compile.compiler import CompiledTaxonomy, default_compiled
from errortaxa.engine.features import FeatureProvider
from errortaxa.engine.run.evaluate import evaluate
from errortaxa.engine.samples import SampleBatch

if TYPE_CHECKING:
    import pandas as pd


def classify_arrays(
    target: Sequence[int] | np.ndarray,
    labels: Sequence[Sequence[int]],
    pred: Sequence[int] | np.ndarray,
    *,
    problematic: Sequence[bool] | np.ndarray | None = None,
    images: Sequence[str] | None = None,
    taxonomy: CompiledTaxonomy | None = None,
    providers: Mapping[str, FeatureProvider] | None = None,
) -> pd.DataFrame:
    """One row per sample: category, rule, evidence (and one column per further axis)."""
    import pandas as pd

    tx = taxonomy or default_compiled()
    batch = SampleBatch.from_lists(target=target, labels=labels, pred=pred, problematic=problematic,
                                   images=list(images) if images is not None else None)
    decisions = evaluate(tx, batch, providers)
    columns: dict[str, object] = {}
    for k, (name, ax) in enumerate(decisions.axes.items()):
        columns["category" if k == 0 else name] = ax.value_names()
        rule_names = np.array([*ax.rules, None], dtype=object)
        columns["rule" if k == 0 else f"{name}_rule"] = rule_names[ax.rule]
    columns["evidence"] = [decisions.evidence(decisions.primary, i) for i in range(len(batch))]
    return pd.DataFrame(columns)


def classify_frame(
    frame: pd.DataFrame,
    *,
    taxonomy: CompiledTaxonomy | None = None,
    providers: Mapping[str, FeatureProvider] | None = None,
) -> pd.DataFrame:
    """``frame`` with columns target, labels, pred (optional image, problematic) plus the decisions."""
    import pandas as pd

    missing = [c for c in ("target", "labels", "pred") if c not in frame.columns]
    if missing:
        raise KeyError(f"the DataFrame lacks column(s) {', '.join(missing)}")
    decided = classify_arrays(
        frame["target"].to_numpy(), [list(x) for x in frame["labels"]], frame["pred"].to_numpy(),
        problematic=frame["problematic"].to_numpy(bool) if "problematic" in frame.columns else None,
        images=frame["image"].tolist() if "image" in frame.columns else None,
        taxonomy=taxonomy, providers=providers,
    )
    decided.index = frame.index
    return pd.concat([frame, decided], axis=1)
