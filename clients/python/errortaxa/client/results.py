"""Typed results of ErrorTaxa calls (dataclasses built from the protobuf responses)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from errortaxa.client.errors import Problem
from errortaxa.v1 import service_pb2, taxonomy_pb2


@dataclass(frozen=True)
class AxisInfo:
    """An axis of a compiled taxonomy: its outcome ids and its rule ids (in evaluation order)."""

    name: str
    values: list[str]
    rules: list[str]


@dataclass(frozen=True)
class TaxonomyInfo:
    """A stored taxonomy version (or a builtin) and its compiled metadata."""

    name: str
    version: str
    content_hash: str
    active: bool = False
    builtin: bool = False
    axes: list[AxisInfo] = field(default_factory=list)
    num_classes: int = 0
    created_at: str = ""
    created_by: str = ""
    description: str = ""

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @classmethod
    def from_proto(cls, msg: taxonomy_pb2.TaxonomyInfo) -> TaxonomyInfo:
        return cls(
            name=msg.name,
            version=msg.version,
            content_hash=msg.content_hash,
            active=msg.active,
            builtin=msg.builtin,
            axes=[AxisInfo(a.name, list(a.values), list(a.rules)) for a in msg.axes],
            num_classes=msg.num_classes,
            created_at=msg.created_at,
            created_by=msg.created_by,
            description=msg.description,
        )


@dataclass(frozen=True)
class AxisResult:
    """The decisions of one axis for N samples: codes into ``values`` / ``rules`` (-1 = none)."""

    axis: str
    values: list[str]
    rules: list[str]
    value: np.ndarray  # int32[N]
    rule: np.ndarray  # int32[N]
    witness: np.ndarray  # int32[N], -1 if none
    not_evaluated: np.ndarray  # bool[N, len(rules)]: rule r could not be evaluated for sample i

    def __len__(self) -> int:
        return int(self.value.shape[0])

    def outcomes(self) -> list[str | None]:
        """The outcome id of each sample."""
        return _decode(self.values, self.value)

    def rule_ids(self) -> list[str | None]:
        """The id of the deciding rule of each sample."""
        return _decode(self.rules, self.rule)

    def counts(self) -> dict[str, int]:
        """Number of samples per outcome (outcomes that occur)."""
        hist = np.bincount(self.value[self.value >= 0], minlength=len(self.values))
        return {name: int(n) for name, n in zip(self.values, hist, strict=False) if n}

    @classmethod
    def from_proto(cls, msg: service_pb2.AxisDecisions) -> AxisResult:
        value = np.array(msg.value, dtype=np.int32)
        rules = len(msg.rules)
        width = (rules + 7) // 8
        if not msg.not_evaluated:
            not_evaluated = np.zeros((value.shape[0], rules), bool)
        elif len(msg.not_evaluated) == value.shape[0] * width:
            bits = np.frombuffer(msg.not_evaluated, np.uint8).reshape(value.shape[0], width)
            not_evaluated = np.unpackbits(bits, axis=1, count=rules, bitorder="little").astype(bool)
        else:
            raise ValueError(f"axis '{msg.axis}': not_evaluated has {len(msg.not_evaluated)} bytes, expected "
                             f"{value.shape[0] * width} ({value.shape[0]} samples x {width})")
        return cls(
            axis=msg.axis,
            values=list(msg.values),
            rules=list(msg.rules),
            value=value,
            rule=np.array(msg.rule, dtype=np.int32),
            witness=np.array(msg.witness, dtype=np.int32),
            not_evaluated=not_evaluated,
        )

    @classmethod
    def concat(cls, parts: Sequence[AxisResult]) -> AxisResult:
        first = parts[0]
        return cls(
            axis=first.axis,
            values=first.values,
            rules=first.rules,
            value=np.concatenate([p.value for p in parts]),
            rule=np.concatenate([p.rule for p in parts]),
            witness=np.concatenate([p.witness for p in parts]),
            not_evaluated=np.concatenate([p.not_evaluated for p in parts]),
        )


def _decode(names: list[str], codes: np.ndarray) -> list[str | None]:
    lookup: list[str | None] = [*names, None]  # code -1 -> None
    return [lookup[c] for c in codes.tolist()]


@dataclass(frozen=True)
class Summary:
    """Statistics of classified samples: counts per primary outcome and the engine's summary."""

    counts: dict[str, int]
    samples: int
    data: dict[str, Any]

    @classmethod
    def from_proto(cls, msg: service_pb2.Summary) -> Summary:
        data = json.loads(msg.json) if msg.json else {}
        return cls(counts=dict(msg.counts), samples=msg.samples, data=data)


@dataclass(frozen=True)
class ClassifyResult:
    """Decisions for N samples, all made by one taxonomy version (``taxonomy``)."""

    taxonomy: TaxonomyInfo
    axes: dict[str, AxisResult]
    primary: str
    evidence_json: list[str] | None = None
    record_json: list[str] | None = None
    summary: Summary | None = None
    sequence: int = 0
    rows: np.ndarray | None = None  # dataset rows, for predictions on a held dataset

    def __len__(self) -> int:
        return len(self.axes[self.primary])

    @property
    def version(self) -> str:
        return self.taxonomy.version

    @property
    def category(self) -> list[str | None]:
        """The outcome of the primary axis (normally ``category``) of each sample."""
        return self.axes[self.primary].outcomes()

    @property
    def rule(self) -> list[str | None]:
        """The rule that decided the primary axis, per sample."""
        return self.axes[self.primary].rule_ids()

    @property
    def witness(self) -> np.ndarray:
        """The class that made the deciding rule hold, per sample (-1 if none)."""
        return self.axes[self.primary].witness

    @property
    def evidence(self) -> list[Any] | None:
        """The evidence of each decision (None where there is none); needs ``evidence=True``."""
        if self.evidence_json is None:
            return None
        return [json.loads(e) if e else None for e in self.evidence_json]

    @property
    def records(self) -> list[dict[str, Any]]:
        """The engine's JSON record of each sample (what local ``errortaxa classify`` writes);
        needs ``records=True``."""
        if self.record_json is None:
            raise ValueError("records were not requested: call classify(..., records=True)")
        return [json.loads(r) for r in self.record_json]

    @classmethod
    def from_proto(cls, msg: service_pb2.ClassifyResponse) -> ClassifyResult:
        axes = {a.axis: AxisResult.from_proto(a) for a in msg.axes}
        return cls(
            taxonomy=TaxonomyInfo.from_proto(msg.taxonomy),
            axes=axes,
            primary=msg.axes[0].axis if msg.axes else "category",
            evidence_json=list(msg.evidence_json) if len(msg.evidence_json) or not msg.count else None,
            record_json=list(msg.record_json) if len(msg.record_json) or not msg.count else None,
            summary=Summary.from_proto(msg.summary) if msg.HasField("summary") else None,
            sequence=msg.sequence,
            rows=np.array(msg.rows, dtype=np.int64) if len(msg.rows) else None,
        )

    @classmethod
    def concat(cls, parts: Sequence[ClassifyResult]) -> ClassifyResult:
        """One result from consecutive parts decided by the same taxonomy version (summaries are
        dropped: they do not add up)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        if any(p.taxonomy.ref != first.taxonomy.ref for p in parts):
            raise ValueError("parts were decided by different taxonomy versions")

        def joined(column: str) -> list[str] | None:
            lists = [getattr(p, column) for p in parts]
            return None if any(x is None for x in lists) else [s for x in lists for s in x]

        rows = [p.rows for p in parts]
        return cls(
            taxonomy=first.taxonomy,
            axes={name: AxisResult.concat([p.axes[name] for p in parts]) for name in first.axes},
            primary=first.primary,
            evidence_json=joined("evidence_json"),
            record_json=joined("record_json"),
            summary=None,
            sequence=first.sequence,
            rows=None if any(r is None for r in rows) else np.concatenate(rows),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class RuleTrace:
    """One rule tried on an explained sample."""

    axis: str
    rule: str
    value: str
    outcome: str  # "held" | "failed" | "not_evaluated" | "skipped"
    reason: str
    decided: bool
    data: dict[str, Any]

    @classmethod
    def from_proto(cls, msg: service_pb2.RuleTrace) -> RuleTrace:
        outcome = service_pb2.RuleOutcome.Name(msg.outcome).removeprefix("RULE_OUTCOME_").lower()
        return cls(
            axis=msg.axis,
            rule=msg.rule,
            value=msg.value,
            outcome=outcome,
            reason=msg.reason,
            decided=msg.decided,
            data=json.loads(msg.json) if msg.json else {},
        )


@dataclass(frozen=True)
class Explanation:
    """Every rule tried on one sample, and the sample's record."""

    taxonomy: TaxonomyInfo
    traces: list[RuleTrace]
    record: dict[str, Any]

    @classmethod
    def from_proto(cls, msg: service_pb2.ExplainResponse) -> Explanation:
        return cls(
            taxonomy=TaxonomyInfo.from_proto(msg.taxonomy),
            traces=[RuleTrace.from_proto(t) for t in msg.traces],
            record=json.loads(msg.record_json) if msg.record_json else {},
        )


@dataclass(frozen=True)
class Validation:
    """Result of a dry-run compile: ok, every problem, and the compiled metadata when ok."""

    ok: bool
    problems: list[Problem]
    taxonomy: TaxonomyInfo | None

    @classmethod
    def from_proto(cls, msg: service_pb2.ValidateTaxonomyResponse) -> Validation:
        return cls(
            ok=msg.ok,
            problems=[Problem.from_proto(p) for p in msg.problems],
            taxonomy=TaxonomyInfo.from_proto(msg.taxonomy) if msg.HasField("taxonomy") else None,
        )


@dataclass(frozen=True)
class StoredTaxonomy:
    """Result of PutTaxonomy: the stored version, whether it is new, and compile warnings."""

    taxonomy: TaxonomyInfo
    created: bool
    problems: list[Problem]

    @classmethod
    def from_proto(cls, msg: service_pb2.PutTaxonomyResponse) -> StoredTaxonomy:
        return cls(
            taxonomy=TaxonomyInfo.from_proto(msg.taxonomy),
            created=msg.created,
            problems=[Problem.from_proto(p) for p in msg.problems],
        )


@dataclass(frozen=True)
class DatasetInfo:
    """A label set the server holds."""

    name: str
    size: int
    problematic: int
    multi_label: int
    empty: int
    source: str
    format: str
    first_images: list[str]

    @classmethod
    def from_proto(cls, msg: service_pb2.DatasetInfo) -> DatasetInfo:
        return cls(
            name=msg.name,
            size=msg.size,
            problematic=msg.problematic,
            multi_label=msg.multi_label,
            empty=msg.empty,
            source=msg.source,
            format=msg.format,
            first_images=list(msg.first_images),
        )
