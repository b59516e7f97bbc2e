"""A ClassifyResponse's size: bounded before the work, checked after it.

Before the evaluation, :func:`response_bound` bounds the encoded response from the request's real
shape (its samples, the ids or images it carries, the provider evidence it sends) and
:func:`record_bound`, the largest record the compiled taxonomy allows: every axis at its longest
value and rule id, a witness with the longest wnid and class name, the largest class-pair
evidence any rule of the primary axis reports (its superclasses, co-occurrence counts:
``PairNode.evidence_bound``), and every rule that can go unevaluated in the not-evaluated list.
That record is built and encoded (JSON text and Struct): the bound is measured, not guessed.

What is not known before the work is counted at an allowance: a not-evaluated reason at
``REASON_BYTES``, and nothing for the evidence a provider of the server adds (evidence sent with
the request is counted at its size). The summary does not grow with the samples and is not
counted. The response is checked again when built (:func:`check_response`), so an answer over the
limit is always refused with a detail that names it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import orjson
from errortaxa.engine import CompiledTaxonomy, SampleBatch
from errortaxa.server.convert import dumps, struct
from errortaxa.server.errors import ServiceError
from errortaxa.v1 import service_pb2
from errortaxa.v1.codec import varint

#: A not-evaluated entry's reason (the provider's text or the engine's) counted at this length.
REASON_BYTES = 160
#: Encoded bytes of one packed int32 (a varint; -1, "none", takes ten).
INT_BYTES = 10
#: A repeated field entry's tag and length prefix, at most.
PREFIX_BYTES = 6
#: A Struct holds a JSON text's content in at most this many bytes per byte of the text (the worst
#: is a list of one-digit numbers: ``1,`` becomes an eleven-byte Value).
STRUCT_PER_JSON_BYTE = 6
#: An ``id`` or ``image`` entry of a record beyond its JSON string: the key and the separators in
#: the JSON text, the map entry, key and Value prefixes in a Struct.
ID_ENTRY_BYTES = 25


@dataclass(frozen=True)
class RecordBound:
    """What a compiled taxonomy's responses take, at most: the decision columns (``columns``
    whatever the samples, ``columns_per_sample`` more per sample) and one record without its id
    or image and without provider evidence, as JSON text and as a Struct, and of the primary
    axis' evidence alone."""

    columns: int
    columns_per_sample: int
    record_json: int
    record_struct: int
    evidence_json: int
    evidence_struct: int


def _longest(strings: Sequence[str | None], size: Callable[[Any], int]) -> str | None:
    return max(strings, key=size) if strings else None


def _json_size(value: Any) -> int:
    return len(dumps(value))


def _utf8_size(value: Any) -> int:
    return len(value.encode()) if isinstance(value, str) else 4


def _largest_record(compiled: CompiledTaxonomy, size: Callable[[Any], int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(record, its evidence) with every part at its largest by ``size``."""
    record: dict[str, Any] = {}
    evidence: dict[str, Any] = {}
    for k, (name, axis) in enumerate(compiled.axes.items()):
        record["category" if k == 0 else name] = _longest([None, *axis.value_ids], size)
        record["rule" if k == 0 else f"{name}_rule"] = _longest([None, *axis.rule_ids], size)
        if k:
            continue
        leaves = [leaf for rule in axis.rules for leaf in rule.witness_leaves]
        if leaves:
            vocabulary = compiled.vocabulary
            evidence.update(with_class=max(len(vocabulary.wnids) - 1, 0),
                            with_wnid=_longest(list(vocabulary.wnids), size),
                            with_name=_longest(list(vocabulary.names), size))
        for leaf in leaves:
            for key, value in leaf.pair_evidence_bound().items():
                if key not in evidence or _json_size(value) > _json_size(evidence[key]):
                    evidence[key] = value
        unknown = [axis.rules[r].id for r in axis.unknowable]
        if unknown:
            rule_id = _longest(unknown, size)
            evidence["not_evaluated"] = [{"rule": rule_id, "reason": "x" * REASON_BYTES} for _ in unknown]
        record["evidence"] = evidence
    return record, evidence


def record_bound(compiled: CompiledTaxonomy) -> RecordBound:
    """The largest record ``compiled`` allows, encoded (see the module docstring)."""
    columns = per_sample = 0
    for axis in compiled.axes.values():
        names = service_pb2.AxisDecisions(axis=axis.name, values=axis.value_ids, rules=axis.rule_ids)
        columns += PREFIX_BYTES + names.ByteSize() + PREFIX_BYTES * 4
        per_sample += 3 * INT_BYTES + (len(axis.rules) + 7) // 8
    as_json, evidence_json = _largest_record(compiled, _json_size)
    as_struct, evidence_struct = _largest_record(compiled, _utf8_size)
    return RecordBound(columns, per_sample, _json_size(as_json), struct(as_struct).ByteSize(),
                       _json_size(evidence_json), struct(evidence_struct).ByteSize())


def _strings_size(values: Sequence[str] | None) -> int:
    """The JSON text of a list of strings, in bytes (each string escaped and quoted)."""
    return len(orjson.dumps(list(values))) if values is not None and len(values) else 0


def response_bound(bound: RecordBound, batch: SampleBatch,
                   options: service_pb2.ResultOptions, *, rows: np.ndarray | None = None,
                   sent_evidence: Sequence[str] = ()) -> int:
    """The encoded size of the ClassifyResponse for ``batch`` at most (its taxonomy info and
    summary aside): ``rows`` the dataset rows of dataset predictions, ``sent_evidence`` the
    per-sample evidence JSON the request carries (echoed into the evidence where a rule holds)."""
    n = len(batch)
    total = 64 + bound.columns + n * bound.columns_per_sample  # 64: sequence, count, the info's prefix
    if rows is not None and len(rows):
        total += PREFIX_BYTES + n * len(varint(int(rows.max())))
    if not (options.records or options.evidence):
        return total
    sent = sum(len(text.encode()) for text in sent_evidence)
    scale = STRUCT_PER_JSON_BYTE if options.structured else 1
    if options.evidence:
        per = bound.evidence_struct if options.structured else bound.evidence_json
        total += n * (PREFIX_BYTES + per) + scale * sent
    if options.records:
        per = bound.record_struct if options.structured else bound.record_json
        ids = batch.ids if batch.ids is not None else batch.images
        total += n * (PREFIX_BYTES + per) + scale * sent
        if ids is not None:
            total += _strings_size(ids) + n * ID_ENTRY_BYTES
    return total


def too_large(size: int, max_message_mb: int, n: int, *, before: bool) -> ServiceError:
    """RESOURCE_EXHAUSTED for a response of ``size`` bytes over ``max_message_mb``."""
    what = "could take up to" if before else "takes"
    return ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"the response for {n} samples {what} {size / 2**20:.1f} MB, more than max_message_mb = "
                        f"{max_message_mb}: send fewer samples per call (ClassifyStream) or ask for fewer options",
                        field="options", reason="RESPONSE_TOO_LARGE")


def check_response(response: service_pb2.ClassifyResponse, options: service_pb2.ResultOptions,
                   max_message_mb: int) -> None:
    """ServiceError RESOURCE_EXHAUSTED when the built ``response`` is over the message limit. Only
    records, evidence and the summary can hold what the bound before the work did not count;
    without them the bound covers the response and it is not measured again."""
    if not (options.records or options.evidence or options.summary):
        return
    size = response.ByteSize()
    if size > max_message_mb * 2**20:
        raise too_large(size, max_message_mb, response.count, before=False)
