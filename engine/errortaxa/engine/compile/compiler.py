"""Compile a validated taxonomy into class x class matrices and ordered, vectorised rules."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from errortaxa.engine.inputs import InputError, read_sample_list
from errortaxa.engine.knowledge.cooccurrence import DEFAULT_COOCCURRENCE, load_cooccurrence
from errortaxa.engine.knowledge.relations import ClassRelations, ancestor_incidence, class_relations
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.engine.language import schema as s
from errortaxa.engine.language.loader import LoadedTaxonomy, load_taxonomy
from errortaxa.engine.language.problems import KeyPath, Problem, TaxonomyError
from errortaxa.engine.predicates import nodes as nodes
from errortaxa.engine.providers import KNOWN_PROVIDERS, FeatureProvider
from errortaxa.engine.results.decisions import AxisDecisions, Decisions
from errortaxa.engine.samples import SampleBatch

ENGINE_VERSION = "0.1.0"
FLAGS = ("pred_is_target", "pred_in_labels", "target_in_labels", "labels_empty", "problematic", "always")


@dataclass
class CompiledRule:
    id: str
    description: str
    value: int  # index into the axis' values
    node: nodes.Node
    when: dict[str, Any]  # the rule's predicate as written (for explanations)
    file: str
    line: int | None

    @cached_property
    def when_text(self) -> str:
        """``when`` as JSON, searched by the evidence builder for the relations it names."""
        return json.dumps(self.when)


@dataclass
class CompiledAxis:
    name: str
    values: list[s.Value]
    rules: list[CompiledRule]

    @property
    def value_ids(self) -> list[str]:
        return [v.id for v in self.values]

    @property
    def rule_ids(self) -> list[str]:
        return [r.id for r in self.rules]

    @cached_property
    def mla_correct(self) -> np.ndarray:
        """bool[len(values) + 1], read-only: the value counts as correct under multi-label accuracy
        (tagged ``mla_correct``); indexed by a decision's value, the last entry (-1, no value) false."""
        mask = np.array([("mla_correct" in v.tags) for v in self.values] + [False])
        mask.flags.writeable = False
        return mask


@dataclass
class RuleTrace:
    """How one rule fared on one sample, for ``explain``."""

    axis: str
    rule: str
    value: str
    result: str  # "holds" | "fails" | "not evaluated" | "not reached"
    detail: str
    evidence: Any = None


@dataclass
class CaseResult:
    """One expected case: did the taxonomy give what it expects?"""

    name: str
    file: str
    line: int | None
    passed: bool
    expected: dict[str, str]
    got: dict[str, str | None]
    # why the case could not be checked here: the outcome differs from the expected one, and a rule
    # it reached that was not evaluated (a missing optional sample list, no OOV provider) would
    # have given the expected value
    not_checked: str | None = None


@dataclass
class CompiledTaxonomy:
    """A taxonomy ready to evaluate: matrices over the vocabulary and ordered rules per axis."""

    name: str
    version: str
    content_hash: str
    loaded: LoadedTaxonomy
    vocabulary: Vocabulary
    superclass_names: list[str]
    membership: np.ndarray  # bool[C, S]
    same_superclass: np.ndarray  # bool[C, C], diagonal true (singletons)
    axes: dict[str, CompiledAxis]
    cooccurrence: dict[str, np.ndarray]
    providers_needed: set[str]
    warnings: list[Problem] = field(default_factory=list)
    # per sample-list resource: file (as written), found (the path read, None if missing),
    # images (how many), source (the resource's own attribution)
    sample_lists: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sample_list_info(self) -> dict[str, dict[str, Any]]:
        """Each sample list the taxonomy names, where it was read from (``found``; None: missing,
        its rules are not evaluated), how many images it holds, and its source."""
        return {name: dict(info) for name, info in self.sample_lists.items()}

    @property
    def document(self) -> s.TaxonomyDocument:
        return self.loaded.document

    @property
    def primary_axis(self) -> str:
        return next(iter(self.axes))

    def superclass_members(self, name: str) -> list[int]:
        """The class indices of a superclass (KeyError if unknown)."""
        if name not in self.superclass_names:
            raise KeyError(f"no superclass '{name}' in taxonomy '{self.name}'")
        return np.flatnonzero(self.membership[:, self.superclass_names.index(name)]).tolist()

    def superclasses_of(self, class_index: int) -> list[str]:
        """The superclasses a class belongs to (empty: it is its own singleton)."""
        return [self.superclass_names[k] for k in np.flatnonzero(self.membership[class_index]).tolist()]

    def shared_superclasses(self, a: int, b: int) -> list[str]:
        both = self.membership[a] & self.membership[b]
        return [self.superclass_names[k] for k in np.flatnonzero(both).tolist()]

    def evaluate(self, batch: SampleBatch, providers: Mapping[str, FeatureProvider] | None = None,
                 *, validate: bool = True) -> Decisions:
        """Classify a whole batch: per axis, the first rule that holds gives each sample its value."""
        if validate:
            batch.validate(len(self.vocabulary))
        ctx = nodes.Context(batch, providers or {})
        result: dict[str, AxisDecisions] = {}
        n = len(batch)
        for axis in self.axes.values():
            value = np.full(n, -1, np.int16)
            rule_of = np.full(n, -1, np.int16)
            witness = np.full(n, -1, np.int32)
            skipped = np.zeros(n, np.uint64)
            reason_codes: dict[int, np.ndarray] = {}
            evidence: dict[int, Any] = {}
            remaining = np.arange(n, dtype=np.int64)
            for r, rule in enumerate(axis.rules):
                if remaining.shape[0] == 0:
                    break
                out = rule.node.eval(ctx, remaining)
                unknown = ~(out.true | out.false)
                if unknown.any():
                    rows = remaining[unknown]
                    skipped[rows] |= np.uint64(1 << min(r, 63))
                    if out.reason is not None:
                        codes = reason_codes.setdefault(r, np.full(n, -1, np.int16))
                        codes[rows] = out.reason[unknown]
                hit = remaining[out.true]
                value[hit] = rule.value
                rule_of[hit] = r
                witness[hit] = out.witness[out.true]
                for pos, ev in out.evidence.items():
                    evidence[int(remaining[pos])] = ev
                remaining = remaining[~out.true]
            result[axis.name] = AxisDecisions(
                axis=axis.name, values=axis.value_ids, rules=axis.rule_ids, value=value, rule=rule_of,
                witness=witness, not_evaluated=skipped, evidence=evidence, reason_codes=reason_codes,
            )
        return Decisions(self, batch, result, list(ctx.reasons))

    def explain(self, batch: SampleBatch, index: int,
                providers: Mapping[str, FeatureProvider] | None = None) -> list[RuleTrace]:
        """Every rule of every axis tried on sample ``index``, with why it held or failed."""
        batch.validate(len(self.vocabulary))
        if not 0 <= index < len(batch):
            raise IndexError(f"sample {index} is outside 0..{len(batch) - 1}")
        ctx = nodes.Context(batch, providers or {})
        rows = np.array([index], dtype=np.int64)
        traces: list[RuleTrace] = []
        for axis in self.axes.values():
            decided = False
            for rule in axis.rules:
                value = axis.values[rule.value].id
                if decided:
                    traces.append(RuleTrace(axis.name, rule.id, value, "not reached", "an earlier rule decided"))
                    continue
                out = rule.node.eval(ctx, rows)
                detail = self._why(rule.node, ctx, rows, batch, index)
                if out.true[0]:
                    decided = True
                    traces.append(RuleTrace(axis.name, rule.id, value, "holds", detail, out.evidence.get(0)))
                elif out.false[0]:
                    traces.append(RuleTrace(axis.name, rule.id, value, "fails", detail))
                else:
                    reason = ctx.reasons[int(out.reason[0])] if out.reason is not None and out.reason[0] >= 0 \
                        else "not evaluated"
                    traces.append(RuleTrace(axis.name, rule.id, value, "not evaluated", reason))
        return traces

    def _why(self, node: nodes.Node, ctx: nodes.Context, rows: np.ndarray, batch: SampleBatch, i: int) -> str:
        """A one-line account of each part of a rule's predicate on one sample."""
        parts = node.parts if isinstance(node, nodes.All | nodes.Any_) else [node]
        words = []
        for part in parts:
            out = part.eval(ctx, rows)
            state = "true" if out.true[0] else "false" if out.false[0] else "not evaluated"
            text = f"{part.describe()}: {state}"
            if out.witness[0] >= 0:
                text += f" (with {self.class_label(int(out.witness[0]))})"
            words.append(text)
        return "; ".join(words)

    def run_cases(self, providers: Mapping[str, FeatureProvider] | None = None) -> list[CaseResult]:
        """Evaluate the expected cases written beside the rules."""
        cases = self.document.cases
        if not cases:
            return []
        ref = self.class_ref
        batch = SampleBatch.from_lists(
            target=[ref(c.sample.target) for c in cases], pred=[ref(c.sample.pred) for c in cases],
            labels=[[ref(x) for x in c.sample.labels] for c in cases],
            problematic=[c.sample.problematic for c in cases],
            images=[c.sample.image or "" for c in cases],
        )
        decisions = self.evaluate(batch, providers)
        results = []
        for i, case in enumerate(cases):
            got: dict[str, str | None] = {}
            for name, ax in decisions.axes.items():
                got[name] = ax.values[ax.value[i]] if ax.value[i] >= 0 else None
                rule = ax.rules[ax.rule[i]] if ax.rule[i] >= 0 else None
                got[f"{name}_rule"] = rule
                if name == self.primary_axis:
                    got["rule"] = rule
            wrong = {k: v for k, v in case.expect.items() if got.get(k) != v}
            file, line = self.loaded.locate(("cases", i))
            # a rule that was not evaluated and would have given an expected value leaves the case open
            skipped = [s for ax in decisions.axes.values() for s in decisions.evidence(ax, i).get("not_evaluated", [])]
            skipped_rules = {s["rule"] for s in skipped}
            could_give = skipped_rules | {axis.values[rule.value].id for axis in self.axes.values()
                                          for rule in axis.rules if rule.id in skipped_rules}
            open_case = bool(wrong) and all(v in could_give for v in wrong.values())
            not_checked = "; ".join(f"{s['rule']}: {s['reason']}" for s in skipped) if open_case else None
            results.append(CaseResult(case.name or f"case {i}", file, line, not wrong, case.expect, got, not_checked))
        return results

    def class_ref(self, ref: int | str) -> int:
        """A class index from an index, wnid or synset name (KeyError if it is not a class)."""
        if isinstance(ref, int):
            return ref
        return self.vocabulary.index(WordNet.load().wnid(ref))

    def class_label(self, c: int) -> str:
        return f"{c} {self.vocabulary.wnids[c]} {self.vocabulary.names[c]}"


# ---------------------------------------------------------------- compilation


def compile_taxonomy(loaded: LoadedTaxonomy) -> CompiledTaxonomy:
    """Resolve superclasses, resources and predicates; raise TaxonomyError listing every error."""
    return _Compiler(loaded).run()


def compile_path(source: str | Path | None = None, *, text: str | None = None) -> CompiledTaxonomy:
    """Load and compile in one step (None = the embedded default)."""
    return compile_taxonomy(load_taxonomy(source, text=text))


@lru_cache(maxsize=1)
def default_compiled() -> CompiledTaxonomy:
    """The embedded default taxonomy, compiled once per process."""
    return compile_path(None)


def data_dirs() -> list[Path]:
    """Where sample lists and co-occurrence files named by a taxonomy are looked up after the
    taxonomy's own directory: the directories of ``$ERRORTAXA_DATA_DIR`` (os.pathsep-separated)."""
    return [Path(p) for p in os.environ.get("ERRORTAXA_DATA_DIR", "").split(os.pathsep) if p]


class _Compiler:
    def __init__(self, loaded: LoadedTaxonomy) -> None:
        self.loaded = loaded
        self.doc = loaded.document
        self.problems: list[Problem] = []
        self.wordnet = WordNet.load()
        self.vocab = Vocabulary.imagenet()
        self.relations: ClassRelations | None = None
        self.pair_cache: dict[str, np.ndarray] = {}
        self.digests: list[str] = []
        self.providers_needed: set[str] = set()

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.loaded.problem(path, message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.loaded.problem(path, message, "warning"))

    def run(self) -> CompiledTaxonomy:
        c = len(self.vocab)
        self.nodes_, self.incidence = ancestor_incidence(self.wordnet, self.vocab)
        self.node_index = {w: k for k, w in enumerate(self.nodes_)}
        names = list(self.doc.superclasses)
        membership = np.zeros((c, len(names)), bool)
        for k, (name, sc) in enumerate(self.doc.superclasses.items()):
            membership[:, k] = self.members(sc.members, ("superclasses", name, "members"))
            size = int(membership[:, k].sum())
            if size < 2:
                self.warn(("superclasses", name), f"superclass has {size} member(s); it groups nothing")
        self.membership = membership
        m8 = membership.astype(np.float32)
        self.same_superclass = (m8 @ m8.T > 0) | np.eye(c, dtype=bool)
        self.superclass_names = names
        self.mappings: dict[str, np.ndarray] = {}
        self.cooccurrence: dict[str, np.ndarray] = {}
        self.sample_lists: dict[str, tuple[frozenset[str] | None, str | None]] = {}
        self.sample_list_info: dict[str, dict[str, Any]] = {}
        for name, res in self.doc.resources.items():
            self.resource(name, res)
        axes = {name: self.axis(name, axis) for name, axis in self.doc.axes.items()}
        self.check_cases(axes)
        errors = [p for p in self.problems if p.severity == "error"]
        if errors:
            raise TaxonomyError(self.problems)
        canonical = json.dumps(self.doc.model_dump(mode="json", by_alias=True), sort_keys=True)
        digest = hashlib.sha256((canonical + "".join(self.digests) + ENGINE_VERSION).encode()).hexdigest()
        return CompiledTaxonomy(
            name=self.doc.name, version=self.doc.version, content_hash=digest[:16], loaded=self.loaded,
            vocabulary=self.vocab, superclass_names=names, membership=membership,
            same_superclass=self.same_superclass, axes=axes, cooccurrence=self.cooccurrence,
            providers_needed=self.providers_needed,
            warnings=[p for p in self.problems if p.severity == "warning"],
            sample_lists=self.sample_list_info,
        )

    # -------------------------------------------------------- classes and superclasses

    def class_index(self, ref: int | str, path: KeyPath) -> int | None:
        if isinstance(ref, int):
            if 0 <= ref < len(self.vocab):
                return ref
            self.error(path, f"class index {ref} is outside 0..{len(self.vocab) - 1}")
            return None
        try:
            wnid = self.wordnet.wnid(ref)
        except KeyError:
            self.error(path, f"unknown class '{ref}': not a WordNet 3.0 noun")
            return None
        if wnid not in self.vocab:
            self.error(path, f"'{ref}' ({wnid}) is not one of the {len(self.vocab)} classes")
            return None
        return self.vocab.index(wnid)

    def members(self, expr: s.MemberExpr, path: KeyPath) -> np.ndarray:
        c = len(self.vocab)
        if isinstance(expr, s.AncestorMember):
            refs = expr.ancestor if isinstance(expr.ancestor, list) else [expr.ancestor]
            out = np.zeros(c, bool)
            for j, ref in enumerate(refs):
                where = (*path, "ancestor", j) if isinstance(expr.ancestor, list) else (*path, "ancestor")
                try:
                    wnid = self.wordnet.wnid(ref)
                except KeyError:
                    self.error(where, f"unknown synset '{ref}': not a WordNet 3.0 noun")
                    continue
                k = self.node_index.get(wnid)
                if k is None:
                    self.warn(where, f"'{ref}' is an ancestor of none of the classes")
                else:
                    out |= self.incidence[:, k]
        elif isinstance(expr, s.ClassesMember):
            out = np.zeros(c, bool)
            for j, class_ref in enumerate(expr.classes):
                k = self.class_index(class_ref, (*path, "classes", j))
                if k is not None:
                    out[k] = True
        elif isinstance(expr, s.AllMember):
            out = np.logical_and.reduce([self.members(e, (*path, "all", j)) for j, e in enumerate(expr.all)])
        elif isinstance(expr, s.AnyMember):
            out = np.logical_or.reduce([self.members(e, (*path, "any", j)) for j, e in enumerate(expr.any)])
        else:
            out = ~self.members(expr.not_, (*path, "not"))
        for j, e in enumerate(expr.except_):
            out = out & ~self.members(e, (*path, "except", j))
        return out

    # -------------------------------------------------------- resources

    def resource(self, name: str, res: s.Resource) -> None:
        path: KeyPath = ("resources", name)
        c = len(self.vocab)
        if isinstance(res, s.CooccurrenceResource):
            here = self.loaded.resource_dir(name)
            file = DEFAULT_COOCCURRENCE if res.builtin else here / str(res.file) if here is not None \
                else self.find_file(name, str(res.file))
            if file is None:
                self.error((*path, "file"), f"co-occurrence file '{res.file}' not found in the data directories "
                                            f"({', '.join(str(d) for d in data_dirs())}); an uploaded taxonomy "
                                            "names a plain file there")
                self.cooccurrence[name] = np.zeros((c, c), np.int32)
                return
            try:
                table = load_cooccurrence(file)
            except (OSError, ValueError) as exc:
                self.error((*path, "file"), f"cannot load co-occurrence table {file}: {exc}")
                self.cooccurrence[name] = np.zeros((c, c), np.int32)  # keeps later errors to the point
                return
            if table.shape != (c, c):
                self.error((*path, "file"), f"table is {table.shape}, expected ({c}, {c})")
                return
            self.cooccurrence[name] = table
            self.digests.append(hashlib.sha256(table.tobytes()).hexdigest())
        elif isinstance(res, s.SampleListResource):
            found = self.find_file(name, res.file)
            self.sample_list_info[name] = {"file": res.file, "found": None if found is None else str(found),
                                           "images": 0, "source": " ".join(res.source.split())}
            if found is None:
                where = [str(d) for d in [self.loaded.resource_dir(name), *data_dirs()] if d is not None]
                message = f"sample list file '{res.file}' not found in {', '.join(where)}"
                if res.optional:
                    self.warn((*path, "file"), message + "; rules using it are not evaluated")
                    self.sample_lists[name] = (None, f"file '{res.file}' not found (set ERRORTAXA_DATA_DIR)")
                else:
                    self.error((*path, "file"), message)
                return
            try:
                images = read_sample_list(found)
            except InputError as exc:
                self.error((*path, "file"), str(exc))
                return
            self.sample_lists[name] = (images, None)
            self.sample_list_info[name]["images"] = len(images)
            self.digests.append(hashlib.sha256("\n".join(sorted(images)).encode()).hexdigest())
        else:
            matrix = np.zeros((c, c), bool)
            for key, pairs, both in (("pairs", res.pairs, False), ("symmetric", res.symmetric, True)):
                for j, (a, b) in enumerate(pairs):
                    ia, ib = (self.class_index(a, (*path, key, j, 0)), self.class_index(b, (*path, key, j, 1)))
                    if ia is not None and ib is not None:
                        matrix[ia, ib] = True
                        matrix[ib, ia] |= both
            for j, group in enumerate(res.groups):
                idx = [self.class_index(x, (*path, "groups", j, k)) for k, x in enumerate(group)]
                ok = [i for i in idx if i is not None]
                matrix[np.ix_(ok, ok)] = True
            np.fill_diagonal(matrix, False)
            self.mappings[name] = matrix

    def find_file(self, name: str, file: str) -> Path | None:
        """``file`` beside the file that declares resource ``name``, else in the data directories;
        for an uploaded taxonomy's own resource only a plain file name, only in the data directories."""
        here = self.loaded.resource_dir(name)
        if here is None and Path(file).name != file:
            return None
        for base in [here, *data_dirs()]:
            if base is None:
                continue
            candidate = base / file
            if candidate.is_file():
                return candidate
        return None

    # -------------------------------------------------------- predicates

    def rel(self) -> ClassRelations:
        if self.relations is None:
            self.relations = class_relations(self.wordnet, self.vocab)
        return self.relations

    def pair(self, pred: s.PairPredicate, path: KeyPath) -> np.ndarray:
        """A class-pair predicate as bool[C, C] indexed [prediction, other class]."""
        key = json.dumps(pred.model_dump(mode="json", by_alias=True), sort_keys=True)
        if key in self.pair_cache:
            return self.pair_cache[key]
        c = len(self.vocab)
        if isinstance(pred, s.SameSuperclassPair):
            if pred.same_superclass is True:
                m = self.same_superclass
            elif pred.same_superclass is False:
                m = ~self.same_superclass
            else:
                cols = []
                for j, name in enumerate(pred.same_superclass):
                    if name in self.superclass_names:
                        cols.append(self.superclass_names.index(name))
                    else:
                        self.error((*path, "same_superclass", j), f"unknown superclass '{name}'")
                sub = self.membership[:, cols].astype(np.float32)
                m = sub @ sub.T > 0
        elif isinstance(pred, s.InMappingPair):
            if pred.in_mapping not in self.mappings:
                self.error((*path, "in_mapping"), f"no class_mapping resource named '{pred.in_mapping}'")
                m = np.zeros((c, c), bool)
            else:
                m = self.mappings[pred.in_mapping]
        elif isinstance(pred, s.AncestorPair):
            m = self.rel().ancestor if pred.ancestor else ~self.rel().ancestor
        elif isinstance(pred, s.DescendantPair):
            m = self.rel().ancestor.T if pred.descendant else ~self.rel().ancestor.T
        elif isinstance(pred, s.SiblingPair):
            m = self.rel().sibling if pred.sibling else ~self.rel().sibling
        elif isinstance(pred, s.SameClassPair):
            m = np.eye(c, dtype=bool) if pred.same_class else ~np.eye(c, dtype=bool)
        elif isinstance(pred, s.LcaDepthPair | s.DistancePair):
            values = self.rel().lca_depth if isinstance(pred, s.LcaDepthPair) else self.rel().distance
            rng = pred.lca_depth if isinstance(pred, s.LcaDepthPair) else pred.distance
            m = np.ones((c, c), bool)
            if rng.min is not None:
                m &= values >= rng.min
            if rng.max is not None:
                m &= values <= rng.max
        elif isinstance(pred, s.CooccursPair):
            table = self.cooccurrence.get(pred.cooccurs.table)
            if table is None:
                self.error((*path, "cooccurs", "table"),
                           f"no cooccurrence resource named '{pred.cooccurs.table}'")
                m = np.zeros((c, c), bool)
            else:
                m = table >= pred.cooccurs.min_count
        elif isinstance(pred, s.AllPair):
            m = np.logical_and.reduce([self.pair(p, (*path, "all", j)) for j, p in enumerate(pred.all)])
        elif isinstance(pred, s.AnyPair):
            m = np.logical_or.reduce([self.pair(p, (*path, "any", j)) for j, p in enumerate(pred.any)])
        else:
            m = ~self.pair(pred.not_, (*path, "not"))
        m = np.ascontiguousarray(m, dtype=bool)
        self.pair_cache[key] = m
        return m

    def node(self, pred: s.Predicate, path: KeyPath) -> nodes.Node:
        for flag in FLAGS:
            if hasattr(pred, flag):
                return nodes.Flag(flag, bool(getattr(pred, flag)))
        if isinstance(pred, s.InSampleList):
            if pred.in_sample_list not in self.sample_lists:
                self.error((*path, "in_sample_list"), f"no sample_list resource named '{pred.in_sample_list}'")
                return nodes.InSampleList(pred.in_sample_list, None, "unknown sample list")
            images, missing = self.sample_lists[pred.in_sample_list]
            return nodes.InSampleList(pred.in_sample_list, images, missing)
        if isinstance(pred, s.PredVsTarget | s.PredVsLabel):
            inner = pred.pred_vs_target if isinstance(pred, s.PredVsTarget) else pred.pred_vs_label
            key = "pred_vs_target" if isinstance(pred, s.PredVsTarget) else "pred_vs_label"
            text = json.dumps(inner.model_dump(mode="json", by_alias=True, exclude_defaults=True))
            return nodes.PairTest(self.pair(inner, (*path, key)),
                                  "target" if isinstance(pred, s.PredVsTarget) else "label", text)
        if isinstance(pred, s.FeatureTest):
            if pred.feature.provider not in KNOWN_PROVIDERS:
                self.warn((*path, "feature", "provider"),
                          f"'{pred.feature.provider}' is not a built-in provider; pass one to evaluate()")
            self.providers_needed.add(pred.feature.provider)
            return nodes.Feature(pred.feature.provider, pred.feature.test, dict(pred.feature.params))
        if isinstance(pred, s.AllPred):
            return nodes.All([self.node(p, (*path, "all", j)) for j, p in enumerate(pred.all)])
        if isinstance(pred, s.AnyPred):
            return nodes.Any_([self.node(p, (*path, "any", j)) for j, p in enumerate(pred.any)])
        assert isinstance(pred, s.NotPred)
        return nodes.Not(self.node(pred.not_, (*path, "not")))

    # -------------------------------------------------------- axes and rules

    def axis(self, name: str, axis: s.Axis) -> CompiledAxis:
        ids = [v.id for v in axis.values]
        for j, v in enumerate(axis.values):
            if ids.count(v.id) > 1:
                self.error(("axes", name, "values", j, "id"), f"duplicate value id '{v.id}'")
        rules: list[CompiledRule] = []
        seen_conjuncts: list[tuple[str, frozenset[str]]] = []
        for j, rule in enumerate(axis.rules):
            path: KeyPath = ("axes", name, "rules", j)
            if rule.id in [r.id for r in rules]:
                self.error((*path, "id"), f"duplicate rule id '{rule.id}'")
            assert rule.when is not None and rule.then is not None
            if rule.then not in ids:
                self.error((*path, "then"), f"unknown value '{rule.then}' of axis '{name}' (known: {', '.join(ids)})")
            when = rule.when.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            conj = _conjuncts(when)
            for earlier, earlier_conj in seen_conjuncts:
                if earlier_conj <= conj:
                    self.warn(path, f"rule '{rule.id}' can never fire: rule '{earlier}' before it "
                                    "holds whenever it does")
                    break
            seen_conjuncts.append((rule.id, conj))
            file, line = self.loaded.locate(path)
            rules.append(CompiledRule(rule.id, rule.description, ids.index(rule.then) if rule.then in ids else -1,
                                      self.node(rule.when, (*path, "when")), when, file, line))
        if not axis.rules:
            self.error(("axes", name, "rules"), "an axis needs at least one rule")
        elif _conjuncts(rules[-1].when) != frozenset():
            self.warn(("axes", name, "rules", len(rules) - 1),
                      "the last rule is not 'always: true': samples no rule matches get no value")
        return CompiledAxis(name, list(axis.values), rules)

    def check_cases(self, axes: dict[str, CompiledAxis]) -> None:
        for j, case in enumerate(self.doc.cases):
            for key in case.expect:
                axis = key[:-5] if key.endswith("_rule") else key
                if key == "rule":
                    continue
                if axis not in axes:
                    self.error(("cases", j, "expect", key), f"unknown axis '{axis}'")
                elif not key.endswith("_rule") and case.expect[key] not in axes[axis].value_ids:
                    self.error(("cases", j, "expect", key), f"unknown value '{case.expect[key]}' of axis '{axis}'")
            smp = case.sample
            for key, ref in (("target", smp.target), ("pred", smp.pred)):
                self.class_index(ref, ("cases", j, "sample", key))
            for k, ref in enumerate(smp.labels):
                self.class_index(ref, ("cases", j, "sample", "labels", k))


def _conjuncts(when: dict[str, Any]) -> frozenset[str]:
    """The parts of a rule's predicate that must all hold (``always`` contributes none)."""
    if "always" in when:
        return frozenset()
    parts = when["all"] if set(when) == {"all"} else [when]
    return frozenset(json.dumps(p, sort_keys=True) for p in parts if "always" not in p)
