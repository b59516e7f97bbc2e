"""Compile a validated taxonomy into class x class matrices and ordered, vectorised rules."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from errortaxa.engine.features import ProviderDeclaration
from errortaxa.engine.inputs import InputFileError, read_sample_list
from errortaxa.engine.knowledge.cooccurrence import DEFAULT_COOCCURRENCE, load_cooccurrence
from errortaxa.engine.knowledge.relations import ClassRelations, ancestor_incidence, class_relations
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.engine.language.limits import check_pair_tables
from errortaxa.engine.language.loader import LoadedTaxonomy, load_taxonomy
from errortaxa.engine.language.problems import KeyPath, Problem, TaxonomyError
from errortaxa.engine.language.schema import (
    AllMember,
    AncestorMember,
    AnyMember,
    Axis,
    ClassesMember,
    CooccurrenceResource,
    MemberExpr,
    Resource,
    SampleListResource,
    TaxonomyDocument,
    Value,
)
from errortaxa.engine.predicates.base import Node, PairNode, single_key
from errortaxa.engine.predicates.registry import PAIR, SAMPLE, conjunct_set
from errortaxa.engine.version import ENGINE_VERSION
from pydantic import BaseModel


@dataclass
class CompiledRule:
    id: str
    description: str
    value: int  # index into the axis' values
    node: Node
    when: dict[str, Any]  # the rule's predicate as written
    file: str
    line: int | None

    @cached_property
    def witness_leaves(self) -> list[Node]:
        """The class-pair tests of the rule; a decision's witness ``source`` indexes them."""
        return self.node.witness_leaves()


@dataclass
class CompiledAxis:
    name: str
    values: list[Value]
    rules: list[CompiledRule]

    @property
    def value_ids(self) -> list[str]:
        return [v.id for v in self.values]

    @property
    def rule_ids(self) -> list[str]:
        return [r.id for r in self.rules]

    @cached_property
    def unknowable(self) -> list[int]:
        """Indices of the rules that can be "not evaluated" (they ask a provider or a sample list)."""
        return [k for k, rule in enumerate(self.rules) if rule.node.can_be_unknown()]

    @cached_property
    def tracks_sources(self) -> bool:
        """Some rule has several class-pair tests, so decisions keep which one gave the witness."""
        return any(len(r.witness_leaves) > 1 for r in self.rules)

    @cached_property
    def mla_correct(self) -> np.ndarray:
        """bool[len(values) + 1], read-only: the value counts as correct under multi-label accuracy
        (tagged ``mla_correct``); indexed by a decision's value, the last entry (-1, no value) false."""
        mask = np.array([("mla_correct" in v.tags) for v in self.values] + [False])
        mask.flags.writeable = False
        return mask


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

    def __repr__(self) -> str:
        """Name, version, hash and shape, never the matrices (the dataclass's repr runs to ~400 KB)."""
        axes = ", ".join(f"{a.name}: {len(a.values)} values, {len(a.rules)} rules" for a in self.axes.values())
        return (f"CompiledTaxonomy(name={self.name!r}, version={self.version!r}, content_hash={self.content_hash!r}, "
                f"classes={len(self.vocabulary)}, superclasses={len(self.superclass_names)}, axes=[{axes}])")

    def sample_list_info(self) -> dict[str, dict[str, Any]]:
        """Each sample list the taxonomy names, where it was read from (``found``; None: missing,
        its rules are not evaluated), how many images it holds, and its source."""
        return {name: dict(info) for name, info in self.sample_lists.items()}

    @property
    def document(self) -> TaxonomyDocument:
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

    def class_ref(self, ref: int | str) -> int:
        """A class index from an index, wnid or synset name (KeyError if it is not a class)."""
        if isinstance(ref, int):
            return ref
        return self.vocabulary.index(WordNet.load().wnid(ref))

    def class_label(self, c: int) -> str:
        return f"{c} {self.vocabulary.wnids[c]} {self.vocabulary.names[c]}"


# ---------------------------------------------------------------- compilation


def compile_taxonomy(loaded: LoadedTaxonomy, *, providers: Mapping[str, ProviderDeclaration] | None = None,
                     missing_provider: Literal["error", "warning"] = "warning") -> CompiledTaxonomy:
    """Resolve superclasses, resources and predicates; raise TaxonomyError listing every error.
    ``providers``: the installed providers' declarations (errortaxa.engine.providers.registry
    .declarations()) that every ``feature:`` is checked against: an unknown test or parameter is an
    error, a provider not among them a warning, or an error with ``missing_provider="error"``
    (None: ``feature:`` is not checked)."""
    return _Compiler(loaded, providers, missing_provider).run()


def compile_path(source: str | Path | None = None, *, text: str | None = None,
                 providers: Mapping[str, ProviderDeclaration] | None = None,
                 missing_provider: Literal["error", "warning"] = "warning") -> CompiledTaxonomy:
    """Load and compile in one step (None = the embedded default); ``providers`` and
    ``missing_provider`` as for :func:`compile_taxonomy`."""
    return compile_taxonomy(load_taxonomy(source, text=text), providers=providers,
                            missing_provider=missing_provider)


@lru_cache(maxsize=1)
def default_compiled() -> CompiledTaxonomy:
    """The embedded default taxonomy, compiled once per process."""
    return compile_path(None)


def data_dirs() -> list[Path]:
    """Where sample lists and co-occurrence files named by a taxonomy are looked up after the
    taxonomy's own directory: the directories of ``$ERRORTAXA_DATA_DIR`` (os.pathsep-separated)."""
    return [Path(p) for p in os.environ.get("ERRORTAXA_DATA_DIR", "").split(os.pathsep) if p]


class _Compiler:
    def __init__(self, loaded: LoadedTaxonomy, declarations: Mapping[str, ProviderDeclaration] | None = None,
                 missing_provider: Literal["error", "warning"] = "warning") -> None:
        self.loaded = loaded
        self.declarations = declarations
        self.missing_provider = missing_provider
        self.doc = loaded.document
        self.problems: list[Problem] = []
        self.wordnet = WordNet.load()
        self.vocab = Vocabulary.imagenet()
        self.num_classes = len(self.vocab)
        self._relations: ClassRelations | None = None
        self.pair_cache: dict[str, PairNode] = {}
        self.digests: list[str] = []
        self.providers_needed: set[str] = set()

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.loaded.problem(path, message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.loaded.problem(path, message, "warning"))

    def run(self) -> CompiledTaxonomy:
        c = len(self.vocab)
        ancestors, self.incidence = ancestor_incidence(self.wordnet, self.vocab)
        self.node_index = {w: k for k, w in enumerate(ancestors)}
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

    def members(self, expr: MemberExpr, path: KeyPath) -> np.ndarray:
        c = len(self.vocab)
        if isinstance(expr, AncestorMember):
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
        elif isinstance(expr, ClassesMember):
            out = np.zeros(c, bool)
            for j, class_ref in enumerate(expr.classes):
                k = self.class_index(class_ref, (*path, "classes", j))
                if k is not None:
                    out[k] = True
        elif isinstance(expr, AllMember):
            out = np.logical_and.reduce([self.members(e, (*path, "all", j)) for j, e in enumerate(expr.all)])
        elif isinstance(expr, AnyMember):
            out = np.logical_or.reduce([self.members(e, (*path, "any", j)) for j, e in enumerate(expr.any)])
        else:
            out = ~self.members(expr.not_, (*path, "not"))
        for j, e in enumerate(expr.except_):
            out = out & ~self.members(e, (*path, "except", j))
        return out

    # -------------------------------------------------------- resources

    def resource(self, name: str, res: Resource) -> None:
        path: KeyPath = ("resources", name)
        c = len(self.vocab)
        if isinstance(res, CooccurrenceResource):
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
        elif isinstance(res, SampleListResource):
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
            except InputFileError as exc:
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

    def relations(self) -> ClassRelations:
        if self._relations is None:
            self._relations = class_relations(self.wordnet, self.vocab)
        return self._relations

    def pair(self, pred: BaseModel, path: KeyPath) -> PairNode:
        """A class-pair predicate, compiled once per distinct text."""
        key = json.dumps(pred.model_dump(mode="json", by_alias=True), sort_keys=True)
        if key not in self.pair_cache:
            check_pair_tables(len(self.pair_cache), self.loaded.locate(path), path)
            self.pair_cache[key] = PAIR[str(single_key(pred))].compile(pred, self, path)
        return self.pair_cache[key]

    def node(self, pred: BaseModel, path: KeyPath) -> Node:
        return SAMPLE[str(single_key(pred))].compile(pred, self, path)

    # -------------------------------------------------------- axes and rules

    def axis(self, name: str, axis: Axis) -> CompiledAxis:
        ids = [v.id for v in axis.values]
        for j, v in enumerate(axis.values):
            if ids.count(v.id) > 1:
                self.error(("axes", name, "values", j, "id"), f"duplicate value id '{v.id}'")
        rules: list[CompiledRule] = []
        rule_ids: set[str] = set()
        seen_conjuncts: list[tuple[str, frozenset[str]]] = []
        for j, rule in enumerate(axis.rules):
            path: KeyPath = ("axes", name, "rules", j)
            if rule.id in rule_ids:
                self.error((*path, "id"), f"duplicate rule id '{rule.id}'")
            if rule.when is None or rule.then is None:  # remove: true, with nothing to remove it from
                self.error(path, f"rule '{rule.id}' says 'remove: true', but this taxonomy extends none: "
                                 "'remove' takes a rule out of the taxonomy named by 'extends'")
                continue
            if rule.then not in ids:
                self.error((*path, "then"), f"unknown value '{rule.then}' of axis '{name}' (known: {', '.join(ids)})")
            when = rule.when.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            conj = conjunct_set(when)
            for earlier, earlier_conj in seen_conjuncts:
                if earlier_conj <= conj:
                    self.warn(path, f"rule '{rule.id}' can never fire: rule '{earlier}' before it "
                                    "holds whenever it does")
                    break
            seen_conjuncts.append((rule.id, conj))
            file, line = self.loaded.locate(path)
            node = self.node(rule.when, (*path, "when"))
            for slot, leaf in enumerate(node.witness_leaves()):
                leaf.slot = slot
            rules.append(CompiledRule(rule.id, rule.description, ids.index(rule.then) if rule.then in ids else -1,
                                      node, when, file, line))
            rule_ids.add(rule.id)
        if not rules:
            self.error(("axes", name, "rules"), "an axis needs at least one rule" if not axis.rules
                       else "the axis has no rules left")
        elif conjunct_set(rules[-1].when) != frozenset():
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

