"""Wire messages <-> engine objects: request columns to SampleBatch (with errors that name the field
and the sample), Decisions to response columns, RuleTrace to the wire. No rule logic here."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
import numpy as np
from errortaxa.engine import CompiledTaxonomy, Decisions, FeatureProvider, FeatureResult, SampleBatch, SampleError
from errortaxa.engine import summarize as engine_summarize
from errortaxa.server.errors import ServiceError, invalid
from errortaxa.v1 import samples_pb2, service_pb2

try:  # optional accelerator, as in the CLI: same records, faster
    import orjson as _orjson

    def dumps(value: Any) -> str:
        return _orjson.dumps(value, default=str).decode()
except ImportError:  # pragma: no cover - depends on the environment

    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), default=str)


# engine SampleError field -> request field
_SAMPLE_FIELDS = {"labels": "label_values", "target": "target", "pred": "pred", "problematic": "problematic",
                  "images": "images", "ids": "ids"}


def _length_error(field: str, got: int, n: int, what: str = "samples") -> ServiceError:
    return invalid(f"{field} has {got} entries for {n} {what}", field=field, reason="LENGTH_MISMATCH",
                   sample_index=min(got, n))


class RequestFeatures:
    """A FeatureProvider answering from per-sample evidence sent with the request: sample i's JSON
    object ``{"<provider>": {"<test>": true|false, ...evidence}}`` (parsed only for the rows a
    rule asks about). Samples without an answer are "not evaluated"."""

    def __init__(self, name: str, evidence_json: Sequence[str]) -> None:
        self.name = name
        self._json = evidence_json
        self._parsed: dict[int, Any] = {}

    def _feature(self, row: int) -> Any:
        if row not in self._parsed:
            text = self._json[row]
            try:
                obj = json.loads(text) if text else {}
            except json.JSONDecodeError as exc:
                raise invalid(f"samples.oov.evidence_json[{row}] is not JSON: {exc.msg}",
                              field="samples.oov.evidence_json", reason="BAD_JSON", sample_index=row) from None
            self._parsed[row] = obj.get(self.name) if isinstance(obj, dict) else None
        return self._parsed[row]

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray
                 ) -> FeatureResult:
        n = rows.shape[0]
        holds, known = np.zeros(n, bool), np.zeros(n, bool)
        reason: list[str | None] = [None] * n
        evidence: list[Any] = [None] * n
        for k, row in enumerate(rows.tolist()):
            feature = self._feature(row)
            answer = feature.get(test) if isinstance(feature, dict) else None
            if isinstance(answer, bool):
                known[k], holds[k] = True, answer
                if answer:
                    evidence[k] = {key: v for key, v in feature.items() if key != test} or None
            else:
                reason[k] = f"no '{self.name}.{test}' evidence sent with the sample"
        return FeatureResult(holds, known, reason, evidence)


def request_providers(msg: samples_pb2.SampleColumns, n: int, provider_names: Sequence[str]
                      ) -> dict[str, FeatureProvider]:
    """Providers built from the evidence a request carries (one per provider the taxonomy uses)."""
    if not msg.HasField("oov"):
        return {}
    if msg.oov.HasField("embeddings") and msg.oov.embeddings.rows:
        raise ServiceError(grpc.StatusCode.UNIMPLEMENTED,
                           "this server has no open-world model to score embeddings: send the OOV test's "
                           "result per sample in samples.oov.evidence_json", field="samples.oov.embeddings",
                           reason="NO_OOV_MODEL")
    if not len(msg.oov.evidence_json):
        return {}
    if len(msg.oov.evidence_json) != n:
        raise _length_error("samples.oov.evidence_json", len(msg.oov.evidence_json), n)
    evidence = list(msg.oov.evidence_json)
    return {name: RequestFeatures(name, evidence) for name in provider_names}


def batch_from_columns(msg: samples_pb2.SampleColumns, num_classes: int, max_batch: int,
                       field: str = "samples") -> SampleBatch:
    """A validated SampleBatch; ServiceError naming the field and first bad sample otherwise."""
    n = len(msg.target)
    if n > max_batch:
        raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{n} samples in one request; the limit is "
                           f"{max_batch}: split the batch or use ClassifyStream", field=f"{field}.target",
                           reason="BATCH_TOO_LARGE")
    if len(msg.pred) != n:
        raise _length_error(f"{field}.pred", len(msg.pred), n)
    for name in ("problematic", "images", "ids"):
        got = len(getattr(msg, name))
        if got not in (0, n):
            raise _length_error(f"{field}.{name}", got, n)
    values = np.array(msg.label_values, dtype=np.int32)
    if len(msg.label_offsets) == 0:
        if values.shape[0]:
            raise invalid(f"{field}.label_offsets is empty but label_values is not",
                          field=f"{field}.label_offsets", reason="LENGTH_MISMATCH")
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        offsets = np.array(msg.label_offsets, dtype=np.int64)
        if offsets.shape[0] != n + 1:
            raise invalid(f"{field}.label_offsets has {offsets.shape[0]} entries for {n} samples (needs {n + 1})",
                          field=f"{field}.label_offsets", reason="LENGTH_MISMATCH",
                          sample_index=min(max(offsets.shape[0] - 1, 0), n))  # first sample without a set
        steps = np.diff(offsets)
        if offsets[0] != 0 or (steps < 0).any() or offsets[-1] != values.shape[0]:
            bad = 0 if offsets[0] != 0 else (int(np.flatnonzero(steps < 0)[0]) if (steps < 0).any() else n - 1)
            raise invalid(f"{field}.label_offsets must start at 0, never decrease and end at "
                          f"len(label_values) = {values.shape[0]}", field=f"{field}.label_offsets",
                          reason="BAD_OFFSETS", sample_index=max(bad, 0))
    # the wire types already are the batch's dtypes: build it directly (from_arrays would re-check)
    batch = SampleBatch(
        target=np.array(msg.target, dtype=np.int32),
        pred=np.array(msg.pred, dtype=np.int32),
        label_offsets=offsets,
        label_values=values,
        problematic=np.array(msg.problematic, dtype=bool) if len(msg.problematic) else np.zeros(n, bool),
        images=list(msg.images) if len(msg.images) else None,
        ids=list(msg.ids) if len(msg.ids) else None,
    )
    validate(batch, num_classes, field)
    return batch


def validate(batch: SampleBatch, num_classes: int, field: str) -> None:
    try:
        batch.validate(num_classes)
    except SampleError as exc:
        name = _SAMPLE_FIELDS.get(exc.field, exc.field)
        reason = "CLASS_OUT_OF_RANGE" if "outside" in exc.reason else "INVALID_SAMPLE"
        raise invalid(f"{field}.{name}: sample {exc.index}: {exc.reason}", field=f"{field}.{name}",
                      reason=reason, sample_index=exc.index) from None


_EVALUATE_VALIDATES = "validate" in inspect.signature(CompiledTaxonomy.evaluate).parameters


def evaluate(compiled: CompiledTaxonomy, batch: SampleBatch, providers: Mapping[str, FeatureProvider]
             ) -> Decisions:
    """compiled.evaluate on a batch that batch_from_columns / validate already checked."""
    if _EVALUATE_VALIDATES:  # skip the engine's second validation of the same batch
        return compiled.evaluate(batch, providers or None, validate=False)
    return compiled.evaluate(batch, providers or None)


def _int_list(array: np.ndarray) -> list[int]:
    return array.tolist()


def fill_decisions(resp: service_pb2.ClassifyResponse, decisions: Decisions,
                   options: service_pb2.ResultOptions) -> None:
    """Decision columns per axis, and records / evidence when asked."""
    for ax in decisions.axes.values():
        msg = resp.axes.add(axis=ax.axis, values=ax.values, rules=ax.rules)
        msg.value.extend(_int_list(ax.value))
        msg.rule.extend(_int_list(ax.rule))
        msg.witness.extend(_int_list(ax.witness))
        if ax.not_evaluated.any():
            msg.not_evaluated.extend(_int_list(ax.not_evaluated))
    n = len(decisions)
    resp.count = n
    if options.records or options.evidence:
        records = [decisions.record(i) for i in range(n)]
        if options.records:
            resp.record_json.extend(dumps(r) for r in records)
        if options.evidence:
            resp.evidence_json.extend(dumps(r["evidence"]) if r.get("evidence") else "" for r in records)


def _summarize_call() -> Callable[[CompiledTaxonomy, SampleBatch, Decisions], dict[str, Any]]:
    """summarize(compiled, batch, decisions) per docs/ARCHITECTURE.md, or (compiled, decisions)."""
    positional = [p for p in inspect.signature(engine_summarize).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    call: Any = engine_summarize
    if len(positional) >= 3:
        return call
    return lambda compiled, batch, decisions: call(compiled, decisions)


summarize = _summarize_call()


def summary_message(compiled: CompiledTaxonomy, batch: SampleBatch, decisions: Decisions
                    ) -> service_pb2.Summary:
    primary = next(iter(decisions.axes.values()))
    codes = primary.value[primary.value >= 0].astype(np.int64)
    counts = np.bincount(codes, minlength=len(primary.values))
    return service_pb2.Summary(
        counts={v: int(c) for v, c in zip(primary.values, counts, strict=True) if c},
        samples=len(decisions),
        json=dumps(summarize(compiled, batch, decisions)),
    )


_OUTCOMES = {
    "holds": service_pb2.RULE_OUTCOME_HELD,
    "fails": service_pb2.RULE_OUTCOME_FAILED,
    "not evaluated": service_pb2.RULE_OUTCOME_NOT_EVALUATED,
    "not reached": service_pb2.RULE_OUTCOME_SKIPPED,
}


def trace_messages(traces: Sequence[Any]) -> list[service_pb2.RuleTrace]:
    """Engine RuleTraces (axis, rule, value, result, detail, evidence) as wire messages."""
    out = []
    decided: set[str] = set()
    for trace in traces:
        is_instance = dataclasses.is_dataclass(trace) and not isinstance(trace, type)
        data = dataclasses.asdict(trace) if is_instance else dict(vars(trace))
        result = str(data.get("result", ""))
        outcome = _OUTCOMES.get(result, service_pb2.RULE_OUTCOME_UNSPECIFIED)
        axis = str(data.get("axis", ""))
        first = outcome == service_pb2.RULE_OUTCOME_HELD and axis not in decided
        if first:
            decided.add(axis)
        out.append(service_pb2.RuleTrace(
            axis=axis, rule=str(data.get("rule", "")), value=str(data.get("value", "")), outcome=outcome,
            reason=str(data.get("detail", "")), decided=first, json=dumps(data),
        ))
    return out
