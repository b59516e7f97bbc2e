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
both agree, once with the taxonomy as it is and once with its sample-list rules left out (the
default taxonomy's non-prototypical list *is* the expert panel's, so the first is partly circular);
entries whose category's rule could not be evaluated (no OOV provider) are reported apart; and
where every list came from (:func:`agreement`).
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
from errortaxa.engine.inputs import InputError, LabeledImages, read_sample_list
from errortaxa.engine.predicates.base import Node
from errortaxa.engine.predicates.sample_list import InSampleListNode

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


def agreement(taxonomy: CompiledTaxonomy, labels: LabeledImages, external: dict[str, dict[str, Any]],
              *, sources: Sequence[str] = ()) -> dict[str, Any]:
    """Confusion matrices and agreement of ``taxonomy`` against ``external`` (see module doc).

    * ``category``: the taxonomy as it is. An entry whose external category is the value of a rule
      that could not be evaluated on it (``fine_grained_oov`` without an OOV provider) is not a
      disagreement: it is counted in ``not_evaluated`` (by external category) and left out.
    * ``category_without_sample_lists``: the same with every sample-list rule left unevaluated (the
      samples fall through to the next rule). A sample list taken from the same expert files (the
      default taxonomy's non-prototypical list is the expert panel's own) makes ``category``
      partly circular; this one is not.
    * ``per_category``: per external category, entries, same and agreement with its 95%
      Clopper-Pearson interval (``agreement_lo`` / ``agreement_hi``), in both.
    * ``per_severity``: per external severity (``major``, ``minor``), the same for the category on
      its entries (``category``) and, with a ``severity`` axis, for the severity (``severity``).
    * every confusion block (``category``, ``category_without_sample_lists``, ``severity``) also
      carries the agreement's interval and ``kappa``: Cohen's kappa between the two
      categorisations (observed agreement against the agreement expected from each side's own
      frequencies).
    * ``sample_lists``: each list the taxonomy uses, where it was read from and its source, how many
      of its images are external entries and how many of those the external files put in the
      category of the rule that uses it (``derived_from_external``: all of them).
    * ``external_files``: ``sources``.
    """
    rows: list[int] = []
    preds: list[int] = []
    ext_cat: list[str] = []
    ext_sev: list[str | None] = []
    names: list[str] = []
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
        names.append(image)
        ext_cat.append(normalise(str(cat)))
        sev = _first(entry, SEVERITY_KEYS)
        ext_sev.append(None if sev is None else normalise_severity(str(sev)))
        borderline += sev is not None and _key(str(sev)) == "borderline"
    picked = labels.take(np.array(rows, np.int64))
    def batch(images: list[str] | None) -> SampleBatch:
        return SampleBatch.from_arrays(target=picked.target, pred=np.array(preds, np.int32),
                                       label_offsets=picked.label_offsets, label_values=picked.label_values,
                                       problematic=picked.problematic, images=images)

    decisions = evaluate(taxonomy, batch(picked.images))
    without = evaluate(taxonomy, batch(None))  # no image names: every sample-list rule is left out
    axis = taxonomy.axes[decisions.primary.axis]
    rules_of: dict[str, list[int]] = {}
    for r, rule in enumerate(axis.rules):
        rules_of.setdefault(axis.values[rule.value].id, []).append(r)
    unknown = np.zeros(len(rows), bool)  # the rule of the external category was not evaluated
    categories = np.array(ext_cat, dtype=object)
    for cat, rules in rules_of.items():
        for r in rules:
            unknown |= (categories == cat) & decisions.primary.rule_not_evaluated(r)
    result: dict[str, Any] = {"taxonomy": taxonomy.name, "entries": len(external), "compared": len(rows),
                              "skipped": skipped, "external_files": [str(s) for s in sources]}
    known = [i for i in range(len(rows)) if not unknown[i]]
    not_evaluated: dict[str, int] = {}
    for i in np.flatnonzero(unknown).tolist():
        not_evaluated[ext_cat[i]] = not_evaluated.get(ext_cat[i], 0) + 1
    result["not_evaluated"] = not_evaluated
    for key, decided in (("category", decisions), ("category_without_sample_lists", without)):
        ours = [str(v) if v is not None else "(none)" for v in decided.primary.value_names()]
        result[key] = _confusion([ext_cat[i] for i in known], [ours[i] for i in known])
    result["per_category"] = {
        cat: {key: _same(result[key], cat) for key in ("category", "category_without_sample_lists")}
        for cat in result["category"]["external"]}
    ours_primary = [str(v) if v is not None else "(none)" for v in decisions.primary.value_names()]
    ours_severity = ([str(v) if v is not None else "(none)" for v in decisions.axes["severity"].value_names()]
                     if "severity" in decisions.axes else None)
    per_severity: dict[str, dict[str, Any]] = {}
    for sev in sorted({s for s in ext_sev if s is not None}):
        picked_known = [i for i in known if ext_sev[i] == sev]
        block = {"category": _rate(sum(ext_cat[i] == ours_primary[i] for i in picked_known), len(picked_known))}
        if ours_severity is not None:
            with_sev = [i for i in range(len(rows)) if ext_sev[i] == sev]
            block["severity"] = _rate(sum(ours_severity[i] == sev for i in with_sev), len(with_sev))
        per_severity[sev] = block
    result["per_severity"] = per_severity
    result["sample_lists"] = _sample_lists(taxonomy, axis, dict(zip(names, ext_cat, strict=True)))
    if "severity" in decisions.axes:
        sev_ours = [str(v) if v is not None else "(none)" for v in decisions.axes["severity"].value_names()]
        keep = [i for i, s in enumerate(ext_sev) if s is not None]
        result["severity"] = _confusion([str(ext_sev[i]) for i in keep], [sev_ours[i] for i in keep])
        result["severity"]["borderline_as_minor"] = borderline
    return result


def _same(block: dict[str, Any], cat: str) -> dict[str, Any]:
    """Entries of external category ``cat`` in a confusion block, how many agree, the share and its
    interval."""
    if cat not in block["external"]:
        return _rate(0, 0)
    row = block["matrix"][block["external"].index(cat)]
    same = row[block["taxonomy"].index(cat)] if cat in block["taxonomy"] else 0
    return _rate(int(same), int(sum(row)))


def _rate(same: int, entries: int) -> dict[str, Any]:
    """``entries``, ``same``, ``agreement`` (None without entries) and its 95% Clopper-Pearson interval."""
    from errortaxa.study.stats import clopper_pearson

    if not entries:
        return {"entries": 0, "same": 0, "agreement": None, "agreement_lo": None, "agreement_hi": None}
    lo, hi = clopper_pearson(same, entries)
    return {"entries": entries, "same": int(same), "agreement": same / entries, "agreement_lo": float(lo),
            "agreement_hi": float(hi)}


def cohen_kappa(external: Sequence[str], ours: Sequence[str]) -> float | None:
    """Cohen's kappa of two categorisations of the same items (None without items; NaN when the
    expected agreement is 1)."""
    n = len(external)
    if not n:
        return None
    observed = sum(1 for e, o in zip(external, ours, strict=True) if e == o) / n
    share_e: dict[str, int] = {}
    share_o: dict[str, int] = {}
    for e, o in zip(external, ours, strict=True):
        share_e[e] = share_e.get(e, 0) + 1
        share_o[o] = share_o.get(o, 0) + 1
    expected = sum(count * share_o.get(label, 0) for label, count in share_e.items()) / (n * n)
    return (observed - expected) / (1 - expected) if expected < 1 else float("nan")


def _sample_lists(taxonomy: CompiledTaxonomy, axis: Any, external: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each sample list of the taxonomy, its source, and how much of it the external files hold."""
    out = taxonomy.sample_list_info()
    for name, info in out.items():
        values = sorted({axis.values[r.value].id for r in axis.rules if name in _list_names(r.node)})
        images = _list_images(taxonomy, name)
        held = [external[i] for i in images if i in external]
        info["category"] = values[0] if len(values) == 1 else values
        info["in_external"] = len(held)
        info["external_same_category"] = sum(1 for c in held if c in values)
        info["derived_from_external"] = bool(images) and info["external_same_category"] == len(images)
    return out


def _list_names(node: Node) -> set[str]:
    """The sample lists a rule's predicate reads."""
    own = {node.name} if isinstance(node, InSampleListNode) else set()
    return own.union(*(_list_names(part) for part in node.parts()))


def _list_images(taxonomy: CompiledTaxonomy, name: str) -> frozenset[str]:
    found = taxonomy.sample_list_info().get(name, {}).get("found")
    return read_sample_list(found) if found else frozenset()


def _confusion(external: list[str], ours: list[str]) -> dict[str, Any]:
    rows = sorted(set(external))
    cols = sorted(set(ours))
    matrix = np.zeros((len(rows), len(cols)), np.int64)
    for e, o in zip(external, ours, strict=True):
        matrix[rows.index(e), cols.index(o)] += 1
    same = sum(1 for e, o in zip(external, ours, strict=True) if e == o)
    rate = _rate(same, len(external))
    return {"external": rows, "taxonomy": cols, "matrix": matrix.tolist(), "same": same,
            "agreement": rate["agreement"], "agreement_lo": rate["agreement_lo"],
            "agreement_hi": rate["agreement_hi"], "kappa": cohen_kappa(external, ours)}


def _interval(block: dict[str, Any]) -> str:
    if block.get("agreement") is None:
        return "n/a"
    return f"{block['agreement']:.1%}, 95% CI {block['agreement_lo']:.1%}-{block['agreement_hi']:.1%}"


def _number(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def format_agreement(result: dict[str, Any]) -> str:
    lines = [f"{result['compared']} of {result['entries']} external entries compared "
             f"({result['skipped']} skipped: image without labels, unknown class or no category)"]
    if result.get("external_files"):
        lines.append(f"external files: {', '.join(result['external_files'])}")
    for name, info in result.get("sample_lists", {}).items():
        where = info["found"] or "not found (its rules were not evaluated)"
        lines.append(f"sample list {name!r} ({info['images']} images, rule value {info['category']}) from {where}; "
                     f"source: {info['source']}")
        if info["in_external"]:
            same = info["external_same_category"]
            lines.append(f"  {info['in_external']} of its images are external entries, {same} "
                         "of them in its category" + (": derived from the same expert files, so the agreement "
                                                       "with it is partly circular" if info["derived_from_external"]
                                                       else ""))
    for cat, n in result.get("not_evaluated", {}).items():
        lines.append(f"not evaluated: {n} entries of external category {cat} (the taxonomy's rule for it could not "
                     "run, e.g. no OOV provider); left out, not counted as disagreements")
    for axis in ("category", "category_without_sample_lists", "severity"):
        block = result.get(axis)
        if not block:
            continue
        width = max([len(r) for r in block["external"]] + [10])
        title = "category, with every sample-list rule left out" if axis == "category_without_sample_lists" else axis
        lines.append(f"{title}: external (rows) vs {result['taxonomy']} (columns)")
        lines.append(" " * width + " " + " ".join(f"{c[:14]:>14}" for c in block["taxonomy"]))
        for r, row in zip(block["external"], block["matrix"], strict=True):
            lines.append(f"{r:<{width}} " + " ".join(f"{x:>14}" for x in row))
        rate = block["agreement"]
        lines.append(f"agreement: {block['same']} ({_interval(block)}), Cohen's kappa {_number(block['kappa'])}"
                     if rate is not None else "agreement: n/a")
    for cat, both in result.get("per_category", {}).items():
        a, b = both["category"], both["category_without_sample_lists"]
        lines.append(f"  {cat}: {a['same']}/{a['entries']} agree ({_interval(a)}); without sample lists "
                     f"{b['same']}/{b['entries']} ({_interval(b)})")
    for sev, block in result.get("per_severity", {}).items():
        text = f"  external severity {sev}: category {block['category']['same']}/{block['category']['entries']} " \
               f"agree ({_interval(block['category'])})"
        if "severity" in block:
            severity = block["severity"]
            text += f"; severity {severity['same']}/{severity['entries']} ({_interval(severity)})"
        lines.append(text)
    return "\n".join(lines)
