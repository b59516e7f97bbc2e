"""Wire messages <-> engine objects: request columns to SampleBatch (with errors that name the field
and the sample), Decisions to response columns, RuleTrace to the wire. No rule logic here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from errortaxa.engine import (
    Decisions,
    FeatureProvider,
    FeatureResult,
    RuleTrace,
    SampleBatch,
    SampleError,
    summarize,
)
from errortaxa.engine.errors import Location
from errortaxa.engine.features import ProviderDeclaration, UnavailableProvider
from errortaxa.engine.providers.factory import (
    Column,
    ProviderFactory,
    ProviderInputError,
    RequestInputs,
    check_inputs,
)
from errortaxa.server.errors import BatchTooLarge, ServiceError, from_error, invalid, shown
from errortaxa.v1 import samples_pb2, service_pb2
from errortaxa.v1.codec import COLUMN_FIELDS, extend_ints, matrix_array
from google.protobuf import struct_pb2


def dumps(value: Any) -> str:
    """Compact JSON text (values JSON cannot hold as their str)."""
    return orjson.dumps(value, default=str).decode()


def fill_struct(message: struct_pb2.Struct, value: Mapping[str, Any]) -> struct_pb2.Struct:
    """``message`` filled with what ``dumps(value)`` holds (the same content as the JSON text)."""
    message.update(orjson.loads(orjson.dumps(value, default=str)))
    return message


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    return fill_struct(struct_pb2.Struct(), value)


# engine SampleError field -> request field
_SAMPLE_FIELDS = {"labels": "label_values", "target": "target", "pred": "pred", "problematic": "problematic",
                  "images": "images", "ids": "ids"}


def length_error(field: str, got: int, n: int, what: str = "samples") -> ServiceError:
    return invalid(f"{field} has {got} entries for {n} {what}", field=field, reason="LENGTH_MISMATCH",
                   sample_index=min(got, n))


def check_batch_size(n: int, limit: int, field: str, what: str, hint: str = "") -> None:
    """RESOURCE_EXHAUSTED when one request carries more than ``limit`` samples."""
    if n > limit:
        raise BatchTooLarge(f"{n} {what} in one request; the limit is {limit}{hint}", Location(field=field))


def check_finite(matrix: np.ndarray, field: str) -> None:
    """INVALID_ARGUMENT naming the first row of a 2-d matrix that holds NaN or infinity."""
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise invalid(f"{field} row {bad} holds NaN or infinity", field=field, reason="NOT_FINITE",
                      sample_index=bad)


class RequestFeatures:
    """A FeatureProvider answering from per-sample evidence sent with the request: sample i's JSON
    object ``{"<provider>": {"<test>": true|false, ...evidence}}`` (parsed only for the rows a
    rule asks about). Samples without an answer go to ``fallback`` (the server's provider, bound to
    the request's inputs for it), or are "not evaluated" when there is none."""

    def __init__(self, name: str, evidence_json: Sequence[str], field: str,
                 fallback: FeatureProvider | None = None) -> None:
        self.name = name
        self._json = evidence_json
        self._field = field
        self._fallback = fallback
        self._parsed: dict[int, Any] = {}

    def _feature(self, row: int) -> Any:
        if row not in self._parsed:
            text = self._json[row]
            try:
                obj = json.loads(text) if text else {}
            except json.JSONDecodeError as exc:
                raise invalid(f"{self._field}[{row}] is not JSON: {exc.msg}", field=self._field, reason="BAD_JSON",
                              sample_index=row) from None
            except RecursionError:
                raise invalid(f"{self._field}[{row}] is nested too deeply", field=self._field, reason="BAD_JSON",
                              sample_index=row) from None
            self._parsed[row] = obj.get(self.name) if isinstance(obj, dict) else None
        return self._parsed[row]

    def evaluate(self, test: str, params: Mapping[str, Any], batch: SampleBatch, rows: np.ndarray
                 ) -> FeatureResult:
        n = rows.shape[0]
        holds, known = np.zeros(n, bool), np.zeros(n, bool)
        reason: list[str | None] = [None] * n
        evidence: list[Any] = [None] * n
        rest: list[int] = []
        for k, row in enumerate(rows.tolist()):
            feature = self._feature(row)
            answer = feature.get(test) if isinstance(feature, dict) else None
            if isinstance(answer, bool):
                known[k], holds[k] = True, answer
                if answer:
                    evidence[k] = {key: v for key, v in feature.items() if key != test} or None
            else:
                rest.append(k)
                reason[k] = f"no '{self.name}.{test}' evidence sent with the sample"
        if rest and self._fallback is not None:
            where = np.asarray(rest, dtype=np.int64)
            other = self._fallback.evaluate(test, params, batch, rows[where])
            holds[where], known[where] = other.holds, other.known
            for j, k in enumerate(rest):
                reason[k], evidence[k] = other.reason[j], other.evidence[j]
        return FeatureResult(holds, known, reason, evidence)


#: the provider whose inputs the deprecated ``oov`` message carries (kept for old clients)
ALIAS_PROVIDER = "oov"


def provider_columns(msg: samples_pb2.ProviderInputs, declaration: ProviderDeclaration, n: int, field: str
                     ) -> RequestInputs:
    """One provider's typed columns of a request as arrays (float32 / int32, [N] or [N, W]) and
    lists (bytes, str), by the declaration's dtype and shape; INVALID_ARGUMENT naming the column
    for one it does not declare, another dtype, a wrong shape or length."""
    columns: dict[str, Column] = {}
    for name, column in msg.columns.items():
        spec = declaration.input(name)
        if spec is None:  # the name as sent, bounded like every user-supplied string an error repeats
            where = f"{field}.{shown(name)[1:-1]}"
            known = ", ".join(c.name for c in declaration.inputs) or "none"
            raise invalid(f"{where}: provider '{declaration.name}' has no input {shown(name)} (inputs: {known})",
                          field=where, reason="UNKNOWN_INPUT")
        where = f"{field}.{name}"
        other = [dtype for dtype, list_field in COLUMN_FIELDS.items()
                 if dtype != spec.dtype and len(getattr(column, list_field))]
        if other:
            raise invalid(f"{where} holds {other[0]} values; it is declared {spec.dtype} "
                          f"({COLUMN_FIELDS[spec.dtype]})", field=where, reason="WRONG_DTYPE")
        values = getattr(column, COLUMN_FIELDS[spec.dtype])
        if spec.width is None:
            if column.cols:
                raise invalid(f"{where} has cols = {column.cols}; it is declared {spec.shape}, one value per "
                              "sample (cols = 0)", field=where, reason="BAD_SHAPE")
            if len(values) != n:
                raise length_error(where, len(values), n)
            columns[name] = np.array(values, dtype=spec.dtype) if spec.dtype in ("float32", "int32") else values
            continue
        if column.cols < 1 or (spec.width and column.cols != spec.width):
            raise invalid(f"{where} has cols = {column.cols}; it is declared {spec.shape}", field=where,
                          reason="BAD_SHAPE")
        if len(values) != n * column.cols:
            raise invalid(f"{where} has {len(values)} values for {n} samples of {column.cols}", field=where,
                          reason="LENGTH_MISMATCH", sample_index=min(len(values) // column.cols, n))
        columns[name] = np.array(values, dtype=spec.dtype).reshape(n, column.cols)
    return RequestInputs(n, columns)


def legacy_oov_columns(msg: samples_pb2.OovEvidence, n: int, field: str) -> RequestInputs | None:
    """The oov provider's inputs sent in the deprecated ``oov`` message (None when it sends none):
    its embeddings, kNN classes and image bytes, as columns of those names."""
    columns: dict[str, Column] = {}
    for name, dtype in (("embeddings", np.float32), ("knn_classes", np.int32)):
        m = getattr(msg, name)
        if msg.HasField(name) and (m.rows or m.cols or len(m.values)):
            columns[name] = matrix(m, dtype, f"{field}.{name}", n)
    if len(msg.image_bytes):
        columns["image_bytes"] = msg.image_bytes
    return RequestInputs(n, columns) if columns else None


def matrix(msg: samples_pb2.FloatMatrix | samples_pb2.IntMatrix, dtype: type[np.floating[Any]]
           | type[np.integer[Any]], field: str, n: int | None = None) -> np.ndarray:
    """A FloatMatrix / IntMatrix (with ``n`` rows when given) as a [rows, cols] array
    (INVALID_ARGUMENT otherwise)."""
    try:
        values = matrix_array(msg, dtype)
    except ValueError as exc:
        raise invalid(f"{field} {exc}", field=field, reason="LENGTH_MISMATCH") from None
    if n is not None and msg.rows != n:
        raise invalid(f"{field} has {msg.rows} rows for {n} samples", field=field, reason="LENGTH_MISMATCH",
                      sample_index=min(msg.rows, n))
    return values


def not_configured(factory: ProviderFactory) -> str:
    """The "not evaluated" reason of a provider this server has no config for, where a request sends
    inputs for it."""
    return (f"this server has no '{factory.name}' provider (start it with {factory.config_option}): "
            "the inputs sent for it are unused")


def _bound(factory: ProviderFactory, provider: FeatureProvider | None, inputs: RequestInputs, field: str
           ) -> FeatureProvider:
    if provider is None:
        return UnavailableProvider(factory.name, not_configured(factory))
    if isinstance(provider, UnavailableProvider):
        return provider  # it says why for every row
    try:
        return factory.bind(provider, inputs)
    except ProviderInputError as exc:
        raise _input_error(exc, field) from None


def _input_error(exc: ProviderInputError, field: str) -> ServiceError:
    return invalid(f"{field}.{exc}", field=f"{field}.{exc.input}", reason=exc.reason_code, sample_index=exc.index)


def request_inputs(source: samples_pb2.SampleColumns | samples_pb2.DatasetPredictions, n: int,
                   factories: Mapping[str, ProviderFactory], num_classes: int, field: str
                   ) -> dict[str, tuple[RequestInputs, str]]:
    """Each provider's inputs in a request (``source``: SampleColumns or DatasetPredictions, named
    ``field`` in errors), checked against its declaration, with the field they came from:
    ``providers[NAME]``, or the deprecated ``oov`` message for the oov provider (both at once:
    INVALID_ARGUMENT). A provider that is not installed here is INVALID_ARGUMENT too."""
    out: dict[str, tuple[RequestInputs, str]] = {}
    for name, msg in source.providers.items():
        factory = factories.get(name)
        if factory is None:
            where = f"{field}.providers.{shown(name)[1:-1]}"
            raise invalid(f"{where}: no feature provider {shown(name)} is installed here (installed: "
                          f"{', '.join(factories) or 'none'})", field=where, reason="UNKNOWN_PROVIDER")
        where = f"{field}.providers.{name}"
        out[name] = provider_columns(msg, factory.declaration, n, where), where
    legacy = legacy_oov_columns(source.oov, n, f"{field}.oov") if source.HasField("oov") else None
    if legacy is not None and ALIAS_PROVIDER in factories:
        if ALIAS_PROVIDER in out:
            raise invalid(f"{field} sends the {ALIAS_PROVIDER} provider's inputs twice: in {field}.oov (deprecated) "
                          f"and in {field}.providers.{ALIAS_PROVIDER}; send them in {field}.providers only",
                          field=f"{field}.oov", reason="CONFLICTING_INPUTS")
        out[ALIAS_PROVIDER] = legacy, f"{field}.oov"
    for name, (inputs, where) in out.items():
        try:
            check_inputs(factories[name].declaration, inputs, num_classes=num_classes)
        except ProviderInputError as exc:
            raise _input_error(exc, where) from None
    return out


def request_providers(source: samples_pb2.SampleColumns | samples_pb2.DatasetPredictions, batch: SampleBatch,
                      server: Mapping[str, FeatureProvider], needed: Sequence[str],
                      factories: Mapping[str, ProviderFactory], num_classes: int, field: str
                      ) -> Mapping[str, FeatureProvider]:
    """The providers for one request: the server's, each the taxonomy needs bound by its factory to
    the request's inputs for it (:func:`request_inputs`), and per-sample evidence answers
    (``oov.evidence_json``) in front. A provider the server has no config for answers "not
    evaluated" (:func:`not_configured`) where inputs are sent for it; one that cannot run here
    keeps saying why."""
    n = len(batch)
    providers = dict(server)
    for name, (inputs, where) in request_inputs(source, n, factories, num_classes, field).items():
        if name in needed:
            providers[name] = _bound(factories[name], server.get(name), inputs, where)
    evidence_json = source.oov.evidence_json if source.HasField("oov") else ()
    if len(evidence_json):
        if len(evidence_json) != n:
            raise length_error(f"{field}.oov.evidence_json", len(evidence_json), n)
        evidence = list(evidence_json)
        for name in needed:
            providers[name] = RequestFeatures(name, evidence, f"{field}.oov.evidence_json", providers.get(name))
    return providers


def batch_from_columns(msg: samples_pb2.SampleColumns, num_classes: int, max_batch: int,
                       field: str = "samples") -> SampleBatch:
    """A validated SampleBatch; ServiceError naming the field and first bad sample otherwise."""
    n = len(msg.target)
    check_batch_size(n, max_batch, f"{field}.target", "samples", ": split the batch or use ClassifyStream")
    if len(msg.pred) != n:
        raise length_error(f"{field}.pred", len(msg.pred), n)
    for name in ("problematic", "images", "ids"):
        got = len(getattr(msg, name))
        if got not in (0, n):
            raise length_error(f"{field}.{name}", got, n)
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
        images=msg.images if len(msg.images) else None,  # the message's container: no list of N strings
        ids=list(msg.ids) if len(msg.ids) else None,
    )
    validate(batch, num_classes, field)
    return batch


def validate(batch: SampleBatch, num_classes: int, field: str) -> None:
    try:
        batch.validate(num_classes)
    except SampleError as exc:
        name = f"{field}.{_SAMPLE_FIELDS.get(exc.field, exc.field)}"
        raise from_error(exc, field=name, message=f"{name}: sample {exc.index}: {exc.reason}") from None


def fill_decisions(resp: service_pb2.ClassifyResponse, decisions: Decisions,
                   options: service_pb2.ResultOptions) -> None:
    """Decision columns per axis, and records / evidence when asked."""
    for ax in decisions.axes.values():
        msg = resp.axes.add(axis=ax.axis, values=ax.values, rules=ax.rules)
        extend_ints(msg, "value", ax.value)
        extend_ints(msg, "rule", ax.rule)
        extend_ints(msg, "witness", ax.witness)
        if ax.not_evaluated.any():  # N x ceil(rules / 8) bytes, the engine's bit sets as they are
            msg.not_evaluated = ax.not_evaluated.tobytes()
    n = len(decisions)
    resp.count = n
    if options.records:
        records = list(decisions.records())
        evidence: list[Any] = [r["evidence"] for r in records] if options.evidence else []
    elif options.evidence:  # the evidence alone: no whole records
        records, primary = [], decisions.primary
        evidence = [decisions.evidence(primary, i) for i in range(n)]
    else:
        return
    if options.structured:
        for record in records:
            fill_struct(resp.records.add(), record)
        for ev in evidence:
            fill_struct(resp.evidence.add(), ev or {})
    else:
        resp.record_json.extend(dumps(r) for r in records)
        resp.evidence_json.extend(dumps(ev) if ev else "" for ev in evidence)


def summary_message(decisions: Decisions) -> service_pb2.Summary:
    """The summary as JSON text and as a Struct of the same content."""
    summary = summarize(decisions.taxonomy, decisions)
    return service_pb2.Summary(
        counts={v: c for v, c in decisions.primary.counts().items() if c},
        samples=len(decisions),
        json=dumps(summary),
        data=struct(summary),
    )


_OUTCOMES = {
    "holds": service_pb2.RULE_OUTCOME_HELD,
    "fails": service_pb2.RULE_OUTCOME_FAILED,
    "not evaluated": service_pb2.RULE_OUTCOME_NOT_EVALUATED,
    "not reached": service_pb2.RULE_OUTCOME_SKIPPED,
}


def trace_messages(traces: Sequence[RuleTrace]) -> list[service_pb2.RuleTrace]:
    """Engine RuleTraces (axis, rule, value, result, detail, evidence) as wire messages."""
    out = []
    decided: set[str] = set()
    for trace in traces:
        outcome = _OUTCOMES.get(trace.result, service_pb2.RULE_OUTCOME_UNSPECIFIED)
        first = outcome == service_pb2.RULE_OUTCOME_HELD and trace.axis not in decided
        if first:
            decided.add(trace.axis)
        entry = dataclasses.asdict(trace)
        out.append(service_pb2.RuleTrace(
            axis=trace.axis, rule=trace.rule, value=trace.value, outcome=outcome, reason=trace.detail,
            decided=first, json=dumps(entry), data=struct(entry),
        ))
    return out
