"""Agreement of a taxonomy with an external categorisation of errors.

The external file is JSON in the format of the google-research/imagenet-mistakes metadata files
(``metadata/vit3b_mistakes.json``, ``metadata/greedy_soups_mistakes.json``): an object mapping a
validation file name to ``{"top_prediction": 192, "failure category": "Fine-grained error",
"failure severity": "Minor"}``. ``top_prediction`` is a class index (a wnid or synset name is
accepted too). The category and severity vocabularies of those files map to ours as in
:data:`EXTERNAL_CATEGORIES` and :data:`EXTERNAL_SEVERITIES` ("Borderline" counts as minor, as in
the paper's analysis). Tolerated aliases: the keys ``category`` / ``failure_category`` /
``mistake_category`` and ``severity`` / ``failure_severity``, and other spellings of the names
(compared after normalisation: lower case, ``-`` and spaces as ``_``, ``ood`` and
``out of vocabulary`` as ``oov``).

Each entry is classified by the taxonomy with the image's labels and the entry's prediction; the
result is a confusion matrix (external rows, taxonomy columns) and the share of entries on which
both agree.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from errortaxa.engine import CompiledTaxonomy, SampleBatch, evaluate
from errortaxa.engine.inputs import InputError, LabeledImages

CATEGORY_KEYS = ("failure category", "category", "failure_category", "mistake_category")
SEVERITY_KEYS = ("failure severity", "severity", "failure_severity", "mistake_severity")
PRED_KEYS = ("top_prediction", "prediction", "pred")

EXTERNAL_CATEGORIES = {
    "Fine-grained error": "fine_grained",
    "Fine-grained error with OOV": "fine_grained_oov",
    "Fine-grained with OOV": "fine_grained_oov",
    "Fine-grained with Multilabel Options": "fine_grained",
    "Spurious Correlation": "spurious_correlation",
    "Non-prototypical": "non_prototypical",
}
"""The ``failure category`` values of google-research/imagenet-mistakes and our category ids."""

EXTERNAL_SEVERITIES = {"Major": "major", "Minor": "minor", "Borderline": "minor"}
"""The ``failure severity`` values of google-research/imagenet-mistakes and our severity ids."""


def _key(name: str) -> str:
    tokens = re.sub(r"[\s\-/]+", "_", name.strip().lower()).split("_")
    text = "_".join("oov" if t == "ood" else t for t in tokens if t)
    return text.replace("out_of_vocabulary", "oov")


_CATEGORY_ALIASES = {
    **{_key(k): v for k, v in EXTERNAL_CATEGORIES.items()},
    "fine_grained_with_oov": "fine_grained_oov", "fine_grained_oov_object": "fine_grained_oov",
    "fine_grained_with_oov_object": "fine_grained_oov", "fine_grained_error_with_oov_object": "fine_grained_oov",
    "non_prototypical_object": "non_prototypical",
    "spurious_correlations": "spurious_correlation",
}
_SEVERITY_ALIASES = {_key(k): v for k, v in EXTERNAL_SEVERITIES.items()}


def normalise(name: str) -> str:
    """An external category name as our category id (unknown names: normalised, kept)."""
    key = _key(name)
    return _CATEGORY_ALIASES.get(key, key)


def normalise_severity(name: str) -> str:
    """An external severity as our severity id (``Borderline`` -> ``minor``)."""
    key = _key(name)
    return _SEVERITY_ALIASES.get(key, key)


def _first(entry: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((entry[k] for k in keys if k in entry), None)


def read_external(paths: Sequence[str | os.PathLike[str]]) -> dict[str, dict[str, Any]]:
    """Entries of one or more external JSON files, by image file name (later files win)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(path, f"cannot read as JSON: {error}") from None
        if not isinstance(data, dict):
            raise InputError(path, "expected an object: file name -> entry")
        for image, entry in data.items():
            if not isinstance(entry, dict):
                raise InputError(path, "entry must be an object", where=f"key {image!r}")
            name = Path(str(image)).name
            out[name if name.endswith(".JPEG") else name + ".JPEG"] = entry
    return out


def agreement(taxonomy: CompiledTaxonomy, labels: LabeledImages,
              external: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Confusion matrix and agreement rate of ``taxonomy`` against ``external`` (see module doc)."""
    rows: list[int] = []
    preds: list[int] = []
    ext_cat: list[str] = []
    ext_sev: list[str | None] = []
    skipped = borderline = 0
    for image, entry in external.items():
        pred_ref = _first(entry, PRED_KEYS)
        cat = _first(entry, CATEGORY_KEYS)
        try:
            row = labels.index_of(image)
            pred = taxonomy.class_ref(pred_ref if isinstance(pred_ref, int) else str(pred_ref))
        except (KeyError, ValueError):
            skipped += 1
            continue
        if cat is None:
            skipped += 1
            continue
        rows.append(row)
        preds.append(pred)
        ext_cat.append(normalise(str(cat)))
        sev = _first(entry, SEVERITY_KEYS)
        ext_sev.append(None if sev is None else normalise_severity(str(sev)))
        borderline += sev is not None and _key(str(sev)) == "borderline"
    picked = labels.take(np.array(rows, np.int64))
    batch = SampleBatch.from_arrays(target=picked.target, pred=np.array(preds, np.int32),
                                    label_offsets=picked.label_offsets, label_values=picked.label_values,
                                    problematic=picked.problematic, images=picked.images)
    decisions = evaluate(taxonomy, batch)
    result: dict[str, Any] = {"taxonomy": taxonomy.name, "entries": len(external), "compared": len(rows),
                              "skipped": skipped}
    ours = [str(v) if v is not None else "(none)" for v in decisions.primary.value_names()]
    result["category"] = _confusion(ext_cat, ours)
    if "severity" in decisions.axes:
        sev_ours = [str(v) if v is not None else "(none)" for v in decisions.axes["severity"].value_names()]
        keep = [i for i, s in enumerate(ext_sev) if s is not None]
        result["severity"] = _confusion([str(ext_sev[i]) for i in keep], [sev_ours[i] for i in keep])
        result["severity"]["borderline_as_minor"] = borderline
    return result


def _confusion(external: list[str], ours: list[str]) -> dict[str, Any]:
    rows = sorted(set(external))
    cols = sorted(set(ours))
    matrix = np.zeros((len(rows), len(cols)), np.int64)
    for e, o in zip(external, ours, strict=True):
        matrix[rows.index(e), cols.index(o)] += 1
    same = sum(1 for e, o in zip(external, ours, strict=True) if e == o)
    return {"external": rows, "taxonomy": cols, "matrix": matrix.tolist(), "same": same,
            "agreement": same / len(external) if external else None}


def format_agreement(result: dict[str, Any]) -> str:
    lines = [f"{result['compared']} of {result['entries']} external entries compared "
             f"({result['skipped']} skipped: image without labels, unknown class or no category)"]
    for axis in ("category", "severity"):
        block = result.get(axis)
        if not block:
            continue
        width = max([len(r) for r in block["external"]] + [10])
        lines.append(f"{axis}: external (rows) vs {result['taxonomy']} (columns)")
        lines.append(" " * width + " " + " ".join(f"{c[:14]:>14}" for c in block["taxonomy"]))
        for r, row in zip(block["external"], block["matrix"], strict=True):
            lines.append(f"{r:<{width}} " + " ".join(f"{x:>14}" for x in row))
        rate = block["agreement"]
        lines.append(f"agreement: {block['same']} ({rate:.1%})" if rate is not None else "agreement: n/a")
    return "\n".join(lines)
