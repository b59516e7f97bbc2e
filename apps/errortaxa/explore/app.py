"""The explorer's answers, independent of HTTP: state, model table, plots, error galleries,
explanations, rule edits with their transitions, comparisons, notes and saving.

Every method takes plain values and returns JSON-ready dicts; bad input is a :class:`BadRequest`
naming the parameter (the server answers 4xx with it, never 500).
"""

from __future__ import annotations

import shlex
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from errortaxa.engine import CompiledTaxonomy, TaxonomyError, compile_taxonomy, evaluate, explain, load_taxonomy
from errortaxa.engine.errors import (
    ErrorTaxaError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    format_key_path,
)
from errortaxa.engine.language.problems import Problem
from errortaxa.engine.outputs import write_text
from errortaxa.engine.providers import registry
from errortaxa.engine.results.accuracy import LABEL_GROUPS
from errortaxa.explore.data import Corpus, ExploreInputs, View, _num, mla_figures

PAGE_LIMIT = 500  # the most records one /api/errors page holds
EXPORT_LIMIT = 1_000_000  # the most records one export holds
NOTE_KINDS = ("label_problem", "non_prototypical")
MAX_NOTE = 2000  # characters of one note
OUTCOMES = {"holds": "held", "fails": "failed", "not evaluated": "not_evaluated", "not reached": "not_reached"}


def edit_data_dirs(taxonomy: CompiledTaxonomy, notes: Path | None) -> list[str]:
    """Folders to add to ``$ERRORTAXA_DATA_DIR`` for edits: an edit is untrusted text whose
    resources (sample lists) are looked up by plain file name in the data directories only, so the
    loaded taxonomy's folder (its sample lists) and the notes' folder (the notes as a sample list)."""
    dirs = [str(Path(s.path).resolve().parent) for s in taxonomy.loaded.sources[:1] if Path(s.path).is_file()]
    if notes is not None:
        dirs.append(str(notes.resolve().parent))
    return list(dict.fromkeys(dirs))


class BadRequest(ErrorTaxaError):
    """A request the explorer cannot answer: ``status`` (HTTP 400, 401, 403, 404, 411, 413), the
    message and the field. A group: made as ``BadRequest(message, field, status)`` it is the member
    whose kind matches the HTTP status."""

    @classmethod
    def _concrete(cls, *args: Any, **kwargs: Any) -> type[ErrorTaxaError]:
        if cls is not BadRequest:
            return super()._concrete(*args, **kwargs)
        status = args[2] if len(args) > 2 else kwargs.get("status", 400)
        if status not in _BAD_REQUESTS:
            raise TypeError(f"BadRequest is a group: HTTP status {status!r} names none of its members")
        return _BAD_REQUESTS[status]

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.http_field, self.http_status = message, field, status

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "field": self.http_field}}


class InvalidRequest(BadRequest, InvalidInput):
    """400 (411: a body without its length)."""


class Unauthorized(BadRequest, Unauthenticated):
    """401: no token, or a wrong one."""


class Forbidden(BadRequest, PermissionDenied):
    """403: cross-origin, an unknown Host, saving or notes not enabled."""


class RequestNotFound(BadRequest, NotFound):
    """404."""


class BodyTooLarge(BadRequest, LimitExceeded):
    """413."""


_BAD_REQUESTS: dict[int, type[BadRequest]] = {400: InvalidRequest, 411: InvalidRequest, 401: Unauthorized,
                                              403: Forbidden, 404: RequestNotFound, 413: BodyTooLarge}


class Explorer:
    """Everything ``errortaxa explore`` serves, over one corpus and a bounded cache of taxonomies.

    ``views``: how many compiled taxonomies (with their decisions) are kept, the loaded one always
    among them; an evicted one is recompiled from its YAML when the page sends it again.
    """

    def __init__(self, inputs: ExploreInputs, *, yaml_text: str, sources: list[str], views: int = 4,
                 allow_save: bool = False, notes: Path | None = None, token_required: bool = False) -> None:
        start = time.perf_counter()
        self.inputs = inputs
        self.corpus = Corpus(inputs)
        self.sources = sources
        self.allow_save = allow_save and inputs.taxonomy_path is not None
        self.notes = notes
        self.token_required = token_required
        self.capacity = max(1, views)
        self._views: OrderedDict[str, View] = OrderedDict()
        self._views_lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._notes_lock = threading.Lock()
        self.loaded = View(self.corpus, inputs.taxonomy, yaml_text, inputs.providers)
        self._views[self.loaded.tx] = self.loaded
        self.startup_s = time.perf_counter() - start

    # ------------------------------------------------------------------ taxonomies

    def view(self, tx: str | None) -> View:
        """The view of taxonomy ``tx`` (the loaded one when empty); 404 when not (or no longer) kept."""
        if not tx:
            return self.loaded
        with self._views_lock:
            view = self._views.get(tx)
            if view is None:
                raise BadRequest("unknown taxonomy", "tx", 404)
            self._views.move_to_end(tx)
            return view

    def _keep(self, view: View) -> View:
        with self._views_lock:
            self._views[view.tx] = view
            self._views.move_to_end(view.tx)
            while len(self._views) > self.capacity:
                victim = next(t for t in self._views if t != self.loaded.tx)
                del self._views[victim]
        return view

    def compile_edit(self, text: str) -> tuple[CompiledTaxonomy | None, list[dict[str, Any]]]:
        """Compile YAML from the browser as an upload is compiled: the bounded loader and its limits,
        ``extends`` of built-in taxonomies only. (None, problems) when it does not compile."""
        origin = self.inputs.taxonomy_path.name if self.inputs.taxonomy_path is not None else "taxonomy.yaml"
        try:
            compiled = compile_taxonomy(load_taxonomy(origin, text=text, builtin_parents_only=True),
                                        providers=registry.declarations())
        except TaxonomyError as error:
            return None, [_problem(p) for p in error.problems]
        except ErrorTaxaError as error:
            return None, [{"line": None, "key": "", "severity": "error", "message": str(error)}]
        problems = [_problem(p) for p in compiled.warnings]
        vocab, ours = compiled.vocabulary, self.inputs.taxonomy.vocabulary
        if len(vocab) != len(ours) or list(vocab.wnids) != list(ours.wnids):
            line = compiled.loaded.locate(("vocabulary",))[1]
            problems.insert(0, {"line": line, "key": "vocabulary", "severity": "error",
                                "message": "the predictions are over the loaded taxonomy's vocabulary: an edit "
                                           "may not change it"})
            return None, problems
        return compiled, problems

    def validate(self, text: str) -> dict[str, Any]:
        """POST /api/validate: the problems of an edit (errors and warnings), located."""
        compiled, problems = self.compile_edit(text)
        return {"ok": compiled is not None, "problems": problems}

    def apply(self, text: str, model: str | None = None, from_tx: str | None = None) -> dict[str, Any]:
        """POST /api/taxonomy: compile, classify every model, and answer with the table, the
        transitions from ``from_tx`` (default: the loaded taxonomy) and the rules' cases."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        before = self.view(from_tx)
        m = self._model(model) if model else None
        compiled, problems = self.compile_edit(text)
        timings["compile_s"] = time.perf_counter() - start
        if compiled is None:
            return {"ok": False, "problems": problems}
        with self._build_lock:
            with self._views_lock:
                view = self._views.get(compiled.content_hash)
            if view is None:
                view = View(self.corpus, compiled, text, self.inputs.providers)
                timings.update({f"{k}_s": v for k, v in view.timings.items()})
            self._keep(view)
        t = time.perf_counter()
        transitions = self.transitions(before, view, m)
        timings["transitions_s"] = time.perf_counter() - t
        t = time.perf_counter()
        table = view.rows()
        timings["table_s"] = time.perf_counter() - t
        t = time.perf_counter()
        cases = view.cases()
        timings["cases_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - start
        return {"ok": True, "tx": view.tx, "from_tx": before.tx, "problems": problems,
                "categories": view.categories, "table": table, "transitions": transitions, "cases": cases,
                "timings": timings, "command": self.study_command(view)}

    def transitions(self, before: View, after: View, model: int | None) -> dict[str, Any]:
        """Old category x new category counts of the top-1 errors of all models (and of one model)."""
        c = self.corpus
        width = len(after.categories) + 1
        cells = (before.pair_value.astype(np.int64) + 1) * width + (after.pair_value.astype(np.int64) + 1)
        size = (len(before.categories) + 1) * width
        errors = c.error_pairs
        all_models = np.bincount(cells[errors], weights=c.pair_count[errors], minlength=size).astype(np.int64)
        one = None
        if model is not None:
            _, pairs = self.corpus.model_errors(model)
            one = np.bincount(cells[pairs], minlength=size).reshape(-1, width)
        full = all_models.reshape(-1, width)
        # the "none" row and column (no rule held) only when something is there
        rows = [0] if full[0].any() or (one is not None and one[0].any()) else []
        cols = [0] if full[:, 0].any() or (one is not None and one[:, 0].any()) else []
        rows += list(range(1, full.shape[0]))
        cols += list(range(1, width))
        names_from = ["(none)", *before.categories]
        names_to = ["(none)", *after.categories]
        return {"from": [names_from[r] for r in rows], "to": [names_to[c] for c in cols],
                "all": full[np.ix_(rows, cols)].tolist(),
                "model": None if one is None else one[np.ix_(rows, cols)].tolist()}

    def taxonomy_yaml(self, tx: str | None) -> str:
        return self.view(tx).yaml

    def save(self, tx: str | None) -> dict[str, Any]:
        """POST /api/save: the taxonomy ``tx`` to the --taxonomy file, only with --allow-save."""
        path = self.inputs.taxonomy_path
        if not self.allow_save or path is None:
            raise BadRequest("saving is off: start errortaxa explore with --taxonomy FILE --allow-save", "tx", 403)
        view = self.view(tx)
        write_text(path, view.yaml)
        return {"ok": True, "path": str(path), "tx": view.tx}

    # ------------------------------------------------------------------ state, table, plots

    def state(self) -> dict[str, Any]:
        view = self.loaded
        return {"sources": self.sources, "models": self.corpus.models, "images": len(self.corpus.image_names),
                "errors": self.corpus.error_total,
                "taxonomy": {"tx": view.tx, "name": view.taxonomy.name, "version": view.taxonomy.version,
                             "yaml": view.yaml},
                "categories": view.categories, "rules": view.rules, "groups": list(LABEL_GROUPS),
                "superclasses": view.taxonomy.superclass_names,
                "can_save": self.allow_save, "token_required": self.token_required,
                "notes_enabled": self.notes is not None, "command": self.study_command(view)}

    def models(self, tx: str | None) -> dict[str, Any]:
        """GET /api/models: the model table, from the study's own table (errortaxa.study)."""
        view = self.view(tx)
        table = view.study_table()
        extra_cols = [c for c in table.columns if not c.startswith(("all.", "organism", "artifact", "other",
                                                                      "dogs", "objects", "problematic",
                                                                      "image_list", "error_share.")) and c != "model"]
        rows = []
        for record in table.to_dict("records"):
            unknown = view.unknown({rule: int(record[f"all.not_evaluated.{rule}"]) for rule in view.not_evaluated})
            rows.append({
                "model": record["model"], "samples": int(record["all.samples"]),
                "top1": _num(record["all.top1"]), "top1_lo": _num(record["all.top1_lo"]),
                "top1_hi": _num(record["all.top1_hi"]),
                **mla_figures(int(record.get("all.mla_not_evaluated", 0)), mla=record["all.mla_share"],
                              mla_lo=record["all.mla_share_lo"], mla_hi=record["all.mla_share_hi"],
                              mla_class=record["all.mla"]),
                "shares": view.shares({c: record[f"all.share.{c}"] for c in view.categories}, unknown),
                "counts": {c: int(record[f"all.n.{c}"]) for c in view.categories}, "not_evaluated": unknown,
                "extra": {c: _json_value(record[c]) for c in extra_cols},
            })
        columns = [{"key": "model", "label": "model"}, {"key": "top1", "label": "top-1"},
                   {"key": "mla", "label": "multi-label accuracy"},
                   {"key": "mla_class", "label": "MLA (per-class mean)"},
                   *[{"key": f"shares.{c}", "label": c} for c in view.categories]]
        return {"tx": view.tx, "columns": columns, "rows": rows, "command": self.study_command(view)}

    def plots(self, tx: str | None) -> dict[str, Any]:
        """GET /api/plots: each error category's share against multi-label accuracy and top-1, per model."""
        view = self.view(tx)
        rows = self.models(tx)["rows"]
        plots = []
        for x in ("mla", "top1"):
            for j, cat in enumerate(view.categories):
                if view.mla_correct[j]:
                    continue
                points = [{"model": r["model"], "x": r[x], "y": r["shares"][cat]} for r in rows
                          if r[x] is not None and r["shares"][cat] is not None]
                if not points:  # no model has this share (its rule was not evaluated)
                    continue
                plots.append({"id": f"{cat}-vs-{x}", "title": f"{cat} share vs {'MLA' if x == 'mla' else 'top-1'}",
                              "x": x, "y": cat, "points": points, "fit": _fit(points)})
        return {"tx": view.tx, "plots": plots, "command": self.study_command(view) + " --report"}

    # ------------------------------------------------------------------ errors

    def errors(self, params: Mapping[str, str]) -> dict[str, Any]:
        """GET /api/errors: one page of the filtered errors, with the total."""
        view = self.view(params.get("tx"))
        offset = _int(params, "offset", 0, 0)
        limit = _int(params, "limit", 60, 1, PAGE_LIMIT)
        selection = self._select(view, params)
        total = selection.total
        page = selection.page(offset, limit)
        records = self._records(view, selection.model, *page)
        return {"total": total, "offset": offset, "limit": limit, "records": records,
                "command": self.classify_command(view, selection.model)}

    def export(self, params: Mapping[str, str]) -> tuple[str, bytes]:
        """GET /api/export: the filtered errors as CSV or JSONL (content type, body)."""
        fmt = params.get("format", "jsonl")
        if fmt not in ("csv", "jsonl"):
            raise BadRequest("format must be csv or jsonl", "format")
        view = self.view(params.get("tx"))
        selection = self._select(view, params)
        if selection.total > EXPORT_LIMIT:
            raise BadRequest(f"{selection.total} errors: narrow the filters (at most {EXPORT_LIMIT} per export)",
                             "limit")
        records: list[dict[str, Any]] = []
        for start in range(0, selection.total, 10_000):
            records += self._records(view, selection.model, *selection.page(start, 10_000))
        if fmt == "jsonl":
            return "application/x-ndjson", b"".join(orjson.dumps(r) + b"\n" for r in records)
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["model", "image", "target", "target_name", "labels", "pred", "pred_name", "category",
                         "rule", "evidence", "models_count"])
        for r in records:
            writer.writerow([r["model"] or "", r["image"], r["target"]["id"], r["target"]["name"],
                             " ".join(str(x["id"]) for x in r["labels"]), r["pred"]["id"], r["pred"]["name"],
                             r["category"] or "", r["rule"] or "", orjson.dumps(r["evidence"]).decode(),
                             r["models_count"]])
        return "text/csv; charset=utf-8", out.getvalue().encode()

    def error_models(self, params: Mapping[str, str]) -> dict[str, Any]:
        """GET /api/error_models: the models making the error (image, pred)."""
        row = self._image(params.get("image", ""))
        pred = self._class(params.get("pred", ""), "pred", self.loaded.taxonomy)
        return {"image": self.corpus.image_names[row], "pred": pred, "models": self.corpus.models_making(row, pred)}

    def _select(self, view: View, params: Mapping[str, str]) -> _Selection:
        c = self.corpus
        taxonomy = view.taxonomy
        model_name = params.get("model") or None
        compare = params.get("compare") or None
        if compare is not None:
            if compare not in ("fixed", "introduced", "changed"):
                raise BadRequest("compare must be fixed, introduced or changed", "compare")
            a, b = self._model(params.get("a", ""), "a"), self._model(params.get("b", ""), "b")
            result = self._compare(view, a, b)
            m = a if compare == "fixed" else b
            rows = np.flatnonzero(result[compare])
            pairs = c.pair_id[m, rows]
            model: int | None = m
        elif model_name is not None:
            model = self._model(model_name)
            rows, pairs = c.model_errors(model)
        else:
            model, pairs = None, c.error_pairs
            rows = c.pair_row[pairs]
        # every filter is numpy over the candidate pairs; each array is gathered only when asked
        keep = np.ones(pairs.shape[0], bool)
        if params.get("category"):
            wanted = _index(["(none)", *view.categories], params["category"], "category") - 1
            keep &= view.pair_value[pairs] == wanted
        if params.get("rule"):
            keep &= view.pair_rule[pairs] == _index(view.rules, params["rule"], "rule")
        if params.get("target"):
            keep &= c.pair_target[pairs] == self._class(params["target"], "target", taxonomy)
        if params.get("pred"):
            keep &= c.pair_pred[pairs] == self._class(params["pred"], "pred", taxonomy)
        if params.get("superclass"):
            name = params["superclass"]
            if name not in taxonomy.superclass_names:
                raise BadRequest(f"no superclass {name!r} in taxonomy '{taxonomy.name}'", "superclass")
            members = taxonomy.membership[:, taxonomy.superclass_names.index(name)]
            keep &= members[c.pair_target[pairs]] | members[c.pair_pred[pairs]]
        if params.get("group"):
            group = params["group"]
            if group not in c.groups:
                raise BadRequest(f"group must be one of {', '.join(c.groups)}", "group")
            keep &= c.groups[group][rows]
        if params.get("min_models"):
            keep &= c.pair_count[pairs] >= _int(params, "min_models", 1, 1)
        if params.get("from_tx") or params.get("from_category"):
            before = self.view(params.get("from_tx"))
            if not params.get("from_category"):
                raise BadRequest("from_tx needs from_category", "from_category")
            old = _index(["(none)", *before.categories], params["from_category"], "from_category") - 1
            keep &= before.pair_value[pairs] == old
        sort = params.get("sort", "models")
        if sort not in ("models", "image"):
            raise BadRequest("sort must be models or image", "sort")
        if model is None:
            chosen = c.order_models[keep[c.order_models]] if sort == "models" else np.flatnonzero(keep)
        else:
            chosen = np.flatnonzero(keep)  # rows are in image order
            if sort == "models":
                chosen = chosen[np.argsort(-c.pair_count[pairs[chosen]], kind="stable")]
        picked = pairs[chosen]
        return _Selection(model, rows[chosen], c.pair_pred[picked], c.pair_count[picked])

    def _records(self, view: View, model: int | None, rows: np.ndarray, preds: np.ndarray,
                 counts: np.ndarray) -> list[dict[str, Any]]:
        c = self.corpus
        names = view.taxonomy.vocabulary.names
        wnids = view.taxonomy.vocabulary.wnids
        batch = c.batch
        out = []
        for rec, row, pred, count in zip(view.records(rows, preds), rows.tolist(), preds.tolist(), counts.tolist(),
                                         strict=True):
            target = int(c.target[row])
            labels = batch.label_values[batch.label_offsets[row]:batch.label_offsets[row + 1]].tolist()
            out.append({
                "model": None if model is None else c.models[model], "image": c.image_names[row],
                "target": {"id": target, "wnid": wnids[target], "name": names[target]},
                "labels": [{"id": x, "name": names[x]} for x in labels],
                "pred": {"id": pred, "name": names[pred]}, "category": rec["category"], "rule": rec["rule"],
                "evidence": rec["evidence"], "evidence_text": evidence_text(rec["evidence"], names[pred]),
                "models_count": int(count),
            })
        return out

    # ------------------------------------------------------------------ explain, compare

    def explain(self, params: Mapping[str, str]) -> dict[str, Any]:
        """GET /api/explain: every rule tried on one model's prediction on one image (the engine's explain)."""
        view = self.view(params.get("tx"))
        m = self._model(params.get("model", ""))
        row = self._image(params.get("image", ""))
        pred = int(self.corpus.preds[m, row])
        if pred < 0:
            raise BadRequest(f"model {self.corpus.models[m]!r} has no prediction on this image", "image", 404)
        names = view.taxonomy.vocabulary.names
        batch = self.corpus.batch.take(np.array([row], np.int64), np.array([pred], np.int32))
        explanation = explain(view.taxonomy, batch, 0, view.providers, validate=False)
        record = explanation.record()
        target = int(self.corpus.target[row])
        labels = batch.label_values.tolist()
        traces = [{"axis": t.axis, "rule": t.rule, "value": t.value, "outcome": OUTCOMES.get(t.result, t.result),
                   "reason": t.detail,
                   "evidence_text": evidence_text(t.evidence, names[pred]) if t.evidence else []}
                  for t in explanation.traces]
        record_json = orjson.dumps({"image": self.corpus.image_names[row], "target": target, "labels": labels,
                                    "pred": pred}).decode()
        return {"model": self.corpus.models[m], "image": self.corpus.image_names[row],
                "target": {"id": target, "wnid": view.taxonomy.vocabulary.wnids[target], "name": names[target]},
                "labels": [{"id": x, "name": names[x]} for x in labels], "pred": {"id": pred, "name": names[pred]},
                "category": record["category"], "rule": record["rule"], "evidence": record["evidence"],
                "evidence_text": evidence_text(record["evidence"], names[pred]), "traces": traces,
                "models": self.corpus.models_making(row, pred),
                "command": f"errortaxa rules explain {shlex.quote(self._taxonomy_arg(view))} "
                           f"--record {shlex.quote(record_json)}"}

    def _compare(self, view: View, a: int, b: int) -> dict[str, np.ndarray]:
        """Per image: fixed / introduced / changed (bool[N]) and the shared headline images."""
        c = self.corpus
        axis = view.taxonomy.axes[view.taxonomy.primary_axis]
        correct: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for m in (a, b):
            rows = np.flatnonzero(c.preds[m] >= 0)
            batch = c.batch.take(rows, c.preds[m, rows].astype(np.int32))
            value = np.full(len(c.image_names), -1, np.int64)
            value[rows] = evaluate(view.taxonomy, batch, view.providers, validate=False).primary.value
            values.append(value)
            correct.append(axis.mla_correct[value])
        shared = c.headline & (c.preds[a] >= 0) & (c.preds[b] >= 0)
        ca, cb = correct
        return {"shared": shared, "correct_a": ca, "correct_b": cb, "fixed": shared & ~ca & cb,
                "introduced": shared & ca & ~cb, "changed": shared & ~ca & ~cb & (values[0] != values[1])}

    def compare(self, params: Mapping[str, str]) -> dict[str, Any]:
        """GET /api/compare: errors fixed, introduced and changed from model a to model b, and the exact
        McNemar test of their multi-label correctness (as ``errortaxa mcnemar``)."""
        from errortaxa.study.stats import mcnemar_exact  # scipy: imported when a comparison is asked

        view = self.view(params.get("tx"))
        a, b = self._model(params.get("a", ""), "a"), self._model(params.get("b", ""), "b")
        result = self._compare(view, a, b)
        shared = result["shared"]
        test = mcnemar_exact(result["correct_a"][shared], result["correct_b"][shared])
        names = self.corpus.models
        files = [self.inputs.models[a].path, self.inputs.models[b].path]
        command = "errortaxa mcnemar " + " ".join(shlex.quote(f) for f in files) + self._labels_option() + \
            self._taxonomy_option(view) + " --json"
        return {"a": names[a], "b": names[b], "fixed": int(result["fixed"].sum()),
                "introduced": int(result["introduced"].sum()), "changed": int(result["changed"].sum()),
                "mcnemar": {"b": test.only_a, "c": test.only_b, "statistic": min(test.only_a, test.only_b),
                            "p": test.p_value, **test.to_dict()},
                "command": command}

    # ------------------------------------------------------------------ notes

    def read_notes(self) -> dict[str, Any]:
        if self.notes is None:
            raise BadRequest("notes are off: start errortaxa explore with --notes FILE", "notes", 403)
        with self._notes_lock:
            text = self.notes.read_text("utf-8") if self.notes.is_file() else ""
        notes = []
        for line in text.splitlines():
            try:
                notes.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return {"path": str(self.notes), "notes": notes}

    def add_note(self, body: Any) -> dict[str, Any]:
        """POST /api/notes: one note appended to the --notes file (JSONL), never another file."""
        if self.notes is None:
            raise BadRequest("notes are off: start errortaxa explore with --notes FILE", "notes", 403)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object", "body")
        image = body.get("image")
        if not isinstance(image, str) or image not in self.corpus.image_index:
            raise BadRequest("unknown image", "image")
        kind = body.get("kind")
        if kind not in NOTE_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(NOTE_KINDS)}", "kind")
        note = body.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise BadRequest(f"note must be text of at most {MAX_NOTE} characters", "note")
        entry = {"image": image, "kind": kind, "note": note, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                   time.gmtime())}
        with self._notes_lock:
            old = self.notes.read_text("utf-8") if self.notes.is_file() else ""
            if old and not old.endswith("\n"):
                old += "\n"
            write_text(self.notes, old + orjson.dumps(entry).decode() + "\n")
        return {"ok": True, "note": entry}

    # ------------------------------------------------------------------ helpers

    def _model(self, name: str, field: str = "model") -> int:
        m = self.corpus.model_index.get(name)
        if m is None:
            raise BadRequest(f"unknown model {name!r}", field, 404 if name else 400)
        return m

    def _image(self, name: str) -> int:
        row = self.corpus.image_index.get(name)
        if row is None:
            raise BadRequest("unknown image", "image", 404 if name else 400)
        return row

    @staticmethod
    def _class(text: str, field: str, taxonomy: CompiledTaxonomy) -> int:
        try:
            c = int(text) if text.strip().lstrip("-").isdigit() else taxonomy.class_ref(text.strip())
        except (KeyError, ValueError):
            raise BadRequest(f"{text!r} is not a class (an index, wnid or synset name)", field) from None
        if not 0 <= c < len(taxonomy.vocabulary):
            raise BadRequest(f"class {c} is outside 0..{len(taxonomy.vocabulary) - 1}", field)
        return c

    def _taxonomy_arg(self, view: View) -> str:
        if view is self.loaded and self.inputs.taxonomy_path is not None:
            return str(self.inputs.taxonomy_path)
        if view is self.loaded and not view.taxonomy.loaded.sources[0].untrusted:
            return view.taxonomy.loaded.path
        return f"edited-{view.tx}.yaml"

    def _taxonomy_option(self, view: View) -> str:
        if view is self.loaded and self.inputs.taxonomy_path is None and self.inputs.command.find("--taxonomy") < 0:
            return ""
        return f" --taxonomy {shlex.quote(self._taxonomy_arg(view))}"

    def _labels_option(self) -> str:
        words = shlex.split(self.inputs.command)
        if "--labels" in words:
            return " --labels " + shlex.quote(words[words.index("--labels") + 1])
        return ""

    def study_command(self, view: View) -> str:
        """The ``errortaxa study`` command computing the same figures (an edited taxonomy: downloaded
        from /api/taxonomy?tx= to the file the command names)."""
        command = self.inputs.command
        if view is not self.loaded:
            words = shlex.split(command)
            if "--taxonomy" in words:
                at = words.index("--taxonomy")
                del words[at:at + 2]
            command = shlex.join(words) + f" --taxonomy {shlex.quote(self._taxonomy_arg(view))}"
        return command + " --out study-out"

    def classify_command(self, view: View, model: int | None) -> str:
        if model is None:
            return self.study_command(view)
        return (f"errortaxa classify {shlex.quote(self.inputs.models[model].path)}{self._labels_option()}"
                f"{self._taxonomy_option(view)}")


class _Selection:
    """The chosen errors in gallery order: model (None: all-models view), rows, preds, model counts."""

    def __init__(self, model: int | None, rows: np.ndarray, preds: np.ndarray, counts: np.ndarray) -> None:
        self.model, self.rows, self.preds, self.counts = model, rows, preds, counts
        self.total = int(rows.shape[0])

    def page(self, offset: int, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = slice(offset, offset + limit)
        return self.rows[s], self.preds[s], self.counts[s]


def evidence_text(evidence: Mapping[str, Any], pred_name: str) -> list[str]:
    """The evidence of a decision in words, one sentence a fact."""
    out = []
    other = evidence.get("with_name")
    if other is not None:
        out.append(f"decided with the class {other} ({evidence.get('with_wnid')})")
    if evidence.get("superclasses"):
        shared = ", ".join(evidence["superclasses"])
        out.append(f"{pred_name} and {other} share the superclass{'es' if len(evidence['superclasses']) > 1 else ''} "
                   f"{shared}")
    if "cooccurrence" in evidence:
        out.append(f"{pred_name} and {other} are labelled together on {evidence['cooccurrence']} image(s)")
    for key, value in evidence.items():
        if key in ("with_class", "with_wnid", "with_name", "superclasses", "cooccurrence", "not_evaluated"):
            continue
        out.append(f"{key}: {value}")
    for skipped in evidence.get("not_evaluated", []):
        out.append(f"rule {skipped['rule']} was not evaluated: {skipped['reason']}")
    return out


def _problem(p: Problem) -> dict[str, Any]:
    return {"line": p.line, "key": format_key_path(p.key_path), "severity": p.severity, "message": p.message}


def _index(names: list[str], value: str, field: str) -> int:
    try:
        return names.index(value)
    except ValueError:
        raise BadRequest(f"unknown {field} {value!r}", field) from None


def _int(params: Mapping[str, str], key: str, default: int, low: int, high: int | None = None) -> int:
    text = params.get(key, "")
    if text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{key} must be an integer", key) from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{key} must be at least {low}" + (f" and at most {high}" if high is not None else ""), key)
    return value


def _fit(points: list[dict[str, Any]]) -> dict[str, float] | None:
    if len(points) < 2:
        return None
    x = np.array([p["x"] for p in points], float)
    y = np.array([p["y"] for p in points], float)
    if np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return {"slope": float(slope), "intercept": float(intercept)}


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
