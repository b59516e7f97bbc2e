"""What every predicate module builds on: registry entries, compiled nodes and their three-valued
outcomes, and the compile-time context a predicate compiles in.

A sample predicate compiles to a :class:`Node` that evaluates on a set of rows at once (Kleene
three-valued logic: true, false, or neither = not evaluated) and gives a *witness* per row: the class
(a label or the target) that made a class-pair test hold, or -1. A class-pair predicate compiles to
a :class:`PairNode`: a bool[C, C] matrix over [prediction, other class].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

import numpy as np
from errortaxa.engine.features import FeatureProvider, ProviderDeclaration
from errortaxa.engine.knowledge.relations import ClassRelations
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.samples import SampleBatch, csr_take
from pydantic import BaseModel

if TYPE_CHECKING:
    # what a nested predicate is to the type checker; at run time language.schema resolves these
    # names to the discriminated unions it builds from the registry
    Predicate = BaseModel
    PairPredicate = BaseModel

M = TypeVar("M", bound=BaseModel)


def single_key(value: Any) -> str | None:
    """The one key of a predicate mapping or model (``except`` aside); None if not exactly one."""
    if isinstance(value, dict):
        keys = [k for k in value if k != "except"]
        return keys[0] if len(keys) == 1 else None
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        names = [fields[f].alias or f for f in value.model_fields_set if f != "except_"]
        return names[0] if len(names) == 1 else None
    return None


def reason_code(reasons: list[str], text: str) -> int:
    """The index of ``text`` in ``reasons``, appended if new (not-evaluated reasons are few)."""
    if text not in reasons:
        reasons.append(text)
    return reasons.index(text)


# ---------------------------------------------------------------- evaluation


@dataclass
class Outcome:
    """Three-valued result over ``rows``: where it is true, where false (neither: not evaluated, with
    ``reason`` codes into Context.reasons), the witness class, the ``source`` slot of the class-pair
    test that gave it (read only where there is a witness; None: no witnesses), and per row the
    evidence of sample-level tests."""

    true: np.ndarray
    false: np.ndarray
    witness: np.ndarray
    source: np.ndarray | None = None
    reason: np.ndarray | None = None
    evidence: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, mask: np.ndarray) -> Outcome:
        return cls(mask, ~mask, np.full(mask.shape[0], -1, np.int32))

    @classmethod
    def unknown(cls, n: int, code: int) -> Outcome:
        """Not evaluated on all n rows, for the reason ``code``."""
        return cls(np.zeros(n, bool), np.zeros(n, bool), np.full(n, -1, np.int32), None, np.full(n, code, np.int16))


class Context:
    """One batch being evaluated, with the providers and the lazily built label-entry index.
    With ``trace`` set, every node's outcome is recorded there by node id (for ``explain``)."""

    def __init__(self, batch: SampleBatch, providers: Mapping[str, FeatureProvider],
                 trace: dict[int, Outcome] | None = None) -> None:
        self.batch = batch
        self.providers = providers
        self.sizes = np.diff(batch.label_offsets)
        self.reasons: list[str] = []
        self.trace = trace
        self._label_rows: np.ndarray | None = None  # the sample of each label entry, when first asked

    def eval(self, node: Node, rows: np.ndarray) -> Outcome:
        """``node`` on ``rows``; nodes ask their parts through here."""
        out = node.eval(self, rows)
        if self.trace is not None:
            self.trace[id(node)] = out
        return out

    def reason_code(self, text: str) -> int:
        """The code of a not-evaluated reason (codes index ``self.reasons``)."""
        return reason_code(self.reasons, text)

    def label_entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the label sets of ``rows``: (position in rows, label class) of every entry."""
        b = self.batch
        if rows.shape[0] == len(b):
            if self._label_rows is None:
                self._label_rows = np.repeat(np.arange(len(b), dtype=np.int64), self.sizes)
            return self._label_rows, b.label_values
        offsets, values = csr_take(b.label_offsets, b.label_values, rows)
        return np.repeat(np.arange(rows.shape[0], dtype=np.int64), np.diff(offsets)), values


class Node:
    """A compiled sample predicate."""

    # explanations list the parts of this node one by one (all, any)
    lists_parts: ClassVar[bool] = False
    # for a node that gives witnesses: its index among its rule's witness_leaves() (set by the compiler)
    slot: int = 0

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def parts(self) -> Sequence[Node]:
        """The nodes this one is made of."""
        return ()

    def can_be_unknown(self) -> bool:
        """Whether the node can be 'not evaluated' (it asks a provider or a sample list)."""
        return any(p.can_be_unknown() for p in self.parts())

    def witness_leaves(self) -> list[Node]:
        """The class-pair tests in this node, left to right; a witness' ``source`` indexes them."""
        return [leaf for p in self.parts() for leaf in p.witness_leaves()]

    def pair_evidence(self, pred: int, other: int) -> dict[str, Any]:
        """For a class-pair test that gave witness ``other``: what held between the two classes."""
        return {}

    def pair_evidence_bound(self) -> dict[str, Any]:
        """For a class-pair test: :meth:`pair_evidence` at its largest (see PairNode.evidence_bound)."""
        return {}


class PairNode:
    """A compiled class-pair predicate: ``matrix`` bool[C, C] over [prediction, other class]."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=bool)

    def evidence(self, a: int, b: int) -> dict[str, Any]:
        """What this predicate reports for a pair (a, b) it holds on (default: nothing)."""
        return {}

    def evidence_bound(self) -> dict[str, Any]:
        """:meth:`evidence` at its largest: every key it can report, each value at its longest
        encoding (what bounds a response's size before the work; not any real pair's evidence).
        A predicate that reports evidence defines both."""
        return {}


# ---------------------------------------------------------------- compilation


class Compiling(Protocol):
    """The compiler as a predicate sees it while compiling."""

    num_classes: int
    superclass_names: list[str]
    membership: np.ndarray  # bool[C, S]
    same_superclass: np.ndarray  # bool[C, C], diagonal true
    mappings: dict[str, np.ndarray]
    cooccurrence: dict[str, np.ndarray]
    sample_lists: dict[str, tuple[frozenset[str] | None, str | None]]  # name -> (images, missing reason)
    providers_needed: set[str]
    # the installed providers' declarations that ``feature:`` is checked against (None: not checked),
    # and whether a provider missing from them is an error (a server) or a warning
    declarations: Mapping[str, ProviderDeclaration] | None
    missing_provider: Literal["error", "warning"]

    def error(self, path: KeyPath, message: str) -> None: ...

    def warn(self, path: KeyPath, message: str) -> None: ...

    def relations(self) -> ClassRelations: ...

    def node(self, pred: BaseModel, path: KeyPath) -> Node: ...

    def pair(self, pred: BaseModel, path: KeyPath) -> PairNode: ...


@dataclass(frozen=True)
class SampleEntry(Generic[M]):
    """A registry entry: the YAML key, its schema model, how it compiles, and optionally which parts
    of it must all hold (for the shadowing check; default: itself)."""

    key: str
    model: type[M]
    compile: Callable[[M, Compiling, KeyPath], Node]
    # (the written value, the conjuncts of a nested predicate) -> the predicates that must all hold
    conjuncts: Callable[[Any, Callable[[dict[str, Any]], list[dict[str, Any]]]], list[dict[str, Any]]] | None = None


@dataclass(frozen=True)
class PairEntry(Generic[M]):
    """A registry entry for a class-pair predicate: key, schema model, how it compiles."""

    key: str
    model: type[M]
    compile: Callable[[M, Compiling, KeyPath], PairNode]
