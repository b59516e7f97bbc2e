"""Columnar decisions, and the JSON records and evidence built from them on demand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from errortaxa.engine.samples import SampleBatch

if TYPE_CHECKING:
    from errortaxa.engine.compile.compiler import CompiledTaxonomy


@dataclass
class AxisDecisions:
    """One axis' outcome for N samples (indices into ``values`` / ``rules``; -1 = none)."""

    axis: str
    values: list[str]
    rules: list[str]
    value: np.ndarray  # int16[N]
    rule: np.ndarray  # int16[N]
    witness: np.ndarray  # int32[N]
    not_evaluated: np.ndarray  # uint64[N], bit r: rule r could not be evaluated
    evidence: dict[int, Any] = field(default_factory=dict)  # sample -> provider evidence
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


@dataclass
class Decisions:
    """The decisions of a compiled taxonomy on a batch, per axis."""

    taxonomy: CompiledTaxonomy
    batch: SampleBatch
    axes: dict[str, AxisDecisions]
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.batch)

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

    def evidence(self, ax: AxisDecisions, i: int) -> dict[str, Any]:
        """Why the deciding rule held: the class it held with, shared superclasses, co-occurrence
        counts, provider evidence; and every rule that could not be evaluated, with the reason."""
        tx = self.taxonomy
        pred = int(self.batch.pred[i])
        ev: dict[str, Any] = {}
        w = int(ax.witness[i])
        r = int(ax.rule[i])
        if w >= 0:
            ev["with_class"] = w
            ev["with_wnid"] = tx.vocabulary.wnids[w]
            ev["with_name"] = tx.vocabulary.names[w]
            rule_when = tx.axes[ax.axis].rules[r].when_text if r >= 0 else ""
            if "same_superclass" in rule_when:
                shared = tx.shared_superclasses(pred, w)
                ev["superclasses"] = shared if shared or pred != w else []
            for table, counts in tx.cooccurrence.items():
                if f'"{table}"' in rule_when:
                    ev["cooccurrence"] = int(counts[pred, w])
        if i in ax.evidence:
            ev["feature"] = ax.evidence[i]
        bits = int(ax.not_evaluated[i])
        if bits:
            skipped = []
            for rule_index in range(min(len(ax.rules), 64)):
                if bits >> rule_index & 1:
                    codes = ax.reason_codes.get(rule_index)
                    code = int(codes[i]) if codes is not None else -1
                    skipped.append({"rule": ax.rules[rule_index],
                                    "reason": self.reasons[code] if code >= 0 else "not evaluated"})
            ev["not_evaluated"] = skipped
        return ev


def reason_code(reasons: list[str], text: str) -> int:
    """The index of ``text`` in ``reasons``, appended if new (not-evaluated reasons are few)."""
    if text not in reasons:
        reasons.append(text)
    return reasons.index(text)


def reason_remap(reasons: list[str], texts: list[str]) -> np.ndarray:
    """int16 codes in ``reasons`` of the codes 0..len(texts)-1 of ``texts``; index -1 stays -1."""
    return np.array([reason_code(reasons, t) for t in texts] + [-1], np.int16)
