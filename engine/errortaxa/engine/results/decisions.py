"""Columnar decisions, and the JSON records and evidence built from them on demand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from errortaxa.engine.compile.compiler import CompiledTaxonomy
from errortaxa.engine.predicates.base import reason_code
from errortaxa.engine.samples import SampleBatch

# bit b of byte value v, for counting the bits of a byte column at once: [256, 8]
_BITS = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.int64)


def bitset_width(rules: int) -> int:
    """Bytes per sample of a not-evaluated bit set over ``rules`` rules."""
    return (rules + 7) // 8


def bit_set(bitsets: np.ndarray, r: int) -> np.ndarray:
    """bool[N]: bit ``r`` of each sample's bit set (``bitsets``: uint8[N, bytes], little-endian bits)."""
    return (bitsets[:, r >> 3] >> np.uint8(r & 7)) & np.uint8(1) > 0


@dataclass(frozen=True)
class PrimaryOutcome:
    """Of one model's predictions, what a study counts: the primary-axis value (-1: none) and the
    rules not evaluated (as :class:`AxisDecisions`)."""

    value: np.ndarray  # int16[N]
    not_evaluated: np.ndarray  # uint8[N, ceil(rules / 8)]: bit r set when rule r could not be evaluated

    def rule_not_evaluated(self, r: int) -> np.ndarray:
        """bool[N]: rule r could not be evaluated for the sample."""
        return bit_set(self.not_evaluated, r)


@dataclass
class AxisDecisions:
    """One axis' outcome for N samples (indices into ``values`` / ``rules``; -1 = none)."""

    axis: str
    values: list[str]
    rules: list[str]
    value: np.ndarray  # int16[N]
    rule: np.ndarray  # int16[N]
    witness: np.ndarray  # int32[N]
    # int16[N]: which class-pair test of the deciding rule (its index in witness_leaves) gave the
    # witness; None: no rule has several, so it is the rule's only one wherever there is a witness
    source: np.ndarray | None
    # uint8[N, ceil(rules / 8)]: bit r % 8 (least significant first) of byte r // 8 set: rule r could
    # not be evaluated for the sample
    not_evaluated: np.ndarray
    evidence: dict[int, dict[str, Any]] = field(default_factory=dict)  # sample -> evidence of sample tests
    reason_codes: dict[int, np.ndarray] = field(default_factory=dict)  # rule -> int16[N] reason codes

    def value_names(self) -> np.ndarray:
        """The value id of every sample as an object array (None where no rule held)."""
        names = np.array([*self.values, None], dtype=object)
        return names[self.value]

    def counts(self, mask: np.ndarray | None = None) -> dict[str, int]:
        """Samples per value, in the axis' order."""
        codes = self.value if mask is None else self.value[mask]
        tally = np.bincount(codes[codes >= 0].astype(np.int64), minlength=len(self.values))
        return {v: int(n) for v, n in zip(self.values, tally, strict=True)}

    def rule_not_evaluated(self, r: int) -> np.ndarray:
        """bool[N]: rule r could not be evaluated for the sample."""
        return bit_set(self.not_evaluated, r)

    def not_evaluated_rules(self, i: int) -> list[int]:
        """The rules that could not be evaluated for sample i."""
        bits = np.unpackbits(self.not_evaluated[i], bitorder="little", count=len(self.rules))
        return np.flatnonzero(bits).tolist()

    def not_evaluated_counts(self, mask: np.ndarray | None = None) -> np.ndarray:
        """int64[rules]: per rule, the samples (of ``mask``) for which it could not be evaluated."""
        bits = self.not_evaluated if mask is None else self.not_evaluated[mask]
        counts = np.zeros(bits.shape[1] * 8, np.int64)
        for j in range(bits.shape[1]):
            column = bits[:, j]
            if column.any():
                counts[8 * j : 8 * j + 8] = np.bincount(column, minlength=256) @ _BITS
        return counts[: len(self.rules)]


@dataclass
class Decisions:
    """The decisions of a compiled taxonomy on a batch, per axis."""

    taxonomy: CompiledTaxonomy
    batch: SampleBatch
    axes: dict[str, AxisDecisions]
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.batch)

    def __repr__(self) -> str:
        """The taxonomy (name, version, hash) and the shape, never the arrays or the taxonomy's matrices."""
        t = self.taxonomy
        return (f"Decisions(taxonomy={t.name!r}, version={t.version!r}, content_hash={t.content_hash!r}, "
                f"samples={len(self)}, axes={list(self.axes)})")

    @classmethod
    def concatenate(cls, parts: list[Decisions], batch: SampleBatch) -> Decisions:
        """Decisions of consecutive slices of ``batch`` as one (reason codes are remapped)."""
        first = parts[0]
        reasons: list[str] = []
        axes: dict[str, AxisDecisions] = {}
        offsets = np.cumsum([0] + [len(p) for p in parts])
        for name, ax in first.axes.items():
            merged = AxisDecisions(
                axis=name, values=ax.values, rules=ax.rules,
                value=np.concatenate([p.axes[name].value for p in parts]),
                rule=np.concatenate([p.axes[name].rule for p in parts]),
                witness=np.concatenate([p.axes[name].witness for p in parts]),
                source=None if ax.source is None else np.concatenate([p.axes[name].source for p in parts]),
                not_evaluated=np.concatenate([p.axes[name].not_evaluated for p in parts]),
            )
            for part, start in zip(parts, offsets, strict=False):
                pa = part.axes[name]
                merged.evidence.update({int(start) + i: e for i, e in pa.evidence.items()})
                remap = reason_remap(reasons, part.reasons)
                for rule, codes in pa.reason_codes.items():
                    column = merged.reason_codes.setdefault(rule, np.full(len(batch), -1, np.int16))
                    column[int(start) : int(start) + len(part)] = remap[codes]
            axes[name] = merged
        return cls(first.taxonomy, batch, axes, reasons)

    @property
    def primary(self) -> AxisDecisions:
        return next(iter(self.axes.values()))

    def record(self, i: int) -> dict[str, Any]:
        """The output record of sample i: id or image, category, rule, evidence (+ other axes)."""
        b = self.batch
        out: dict[str, Any] = {}
        if b.ids is not None:
            out["id"] = b.ids[i]
        elif b.images is not None:
            out["image"] = b.images[i]
        for k, (name, ax) in enumerate(self.axes.items()):
            v, r = int(ax.value[i]), int(ax.rule[i])
            key = "category" if k == 0 else name
            out[key] = ax.values[v] if v >= 0 else None
            out["rule" if k == 0 else f"{name}_rule"] = ax.rules[r] if r >= 0 else None
            if k == 0:
                out["evidence"] = self.evidence(ax, i)
        return out

    def records(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self.record(i)

    def rule_evidence(self, ax: AxisDecisions, i: int) -> dict[str, Any]:
        """What the parts of the deciding rule that held report: the class it held with and what
        held between it and the prediction (shared superclasses, co-occurrence count, ...), and the
        evidence of sample-level tests (a provider's ``feature``)."""
        ev: dict[str, Any] = {}
        w = int(ax.witness[i])
        if w >= 0:
            vocab = self.taxonomy.vocabulary
            ev["with_class"] = w
            ev["with_wnid"] = vocab.wnids[w]
            ev["with_name"] = vocab.names[w]
            source = int(ax.source[i]) if ax.source is not None else 0
            if source >= 0:
                leaf = self.taxonomy.axes[ax.axis].rules[int(ax.rule[i])].witness_leaves[source]
                ev.update(leaf.pair_evidence(int(self.batch.pred[i]), w))
        if i in ax.evidence:
            ev.update(ax.evidence[i])
        return ev

    def evidence(self, ax: AxisDecisions, i: int) -> dict[str, Any]:
        """:meth:`rule_evidence`, and every rule that could not be evaluated, with the reason."""
        ev = self.rule_evidence(ax, i)
        if ax.not_evaluated[i].any():
            skipped = []
            for r in ax.not_evaluated_rules(i):
                codes = ax.reason_codes.get(r)
                code = int(codes[i]) if codes is not None else -1
                skipped.append({"rule": ax.rules[r], "reason": self.reasons[code] if code >= 0 else "not evaluated"})
            ev["not_evaluated"] = skipped
        return ev


def reason_remap(reasons: list[str], texts: list[str]) -> np.ndarray:
    """int16 codes in ``reasons`` of the codes 0..len(texts)-1 of ``texts``; index -1 stays -1."""
    return np.array([reason_code(reasons, t) for t in texts] + [-1], np.int16)
