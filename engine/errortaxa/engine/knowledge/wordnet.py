"""WordNet 3.0 nouns: the committed snapshot as a networkx graph, with NLTK's path semantics.

The snapshot (``data/wordnet30_nouns.tsv.gz``, built by ``scripts/build_wordnet.py``) holds
every noun synset with its name, lemma names, definition and its direct hypernyms and
instance hypernyms. Nodes are wnids (``"n02084071"``) with attributes ``name``, ``lemmas``
(a tuple: with no mutable lists the cyclic GC can untrack the 82k attribute dicts) and
``definition``; edges go child -> parent with ``kind`` = ``"hypernym"`` or ``"instance"``.

Order: a synset's parents are its hypernyms then its instance hypernyms, each sorted by
synset name, as NLTK <= 3.8 returned them (NLTK >= 3.9 returns them in set order, so only
the set of paths, not their order, is reproducible there). ``hypernym_paths`` follows this
order; ``graph.succ`` / ``graph.pred`` list parents / children in it too.
"""

from __future__ import annotations

import gc
import gzip
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import networkx as nx
from errortaxa.engine.gcpause import gc_paused

__all__ = ["SNAPSHOT", "WordNet"]

SNAPSHOT = "wordnet30_nouns.tsv.gz"
HYPERNYM = "hypernym"
INSTANCE = "instance"


class WordNet:
    """WordNet 3.0 noun hierarchy; query methods accept a wnid or a synset name."""

    graph: Any  # networkx.DiGraph (networkx ships no type stubs)

    def __init__(self, graph: Any, senses: dict[str, tuple[int, ...]] | None = None) -> None:
        """Wrap ``graph`` (nodes: wnids with name/lemmas/definition; edges child -> parent).

        ``senses`` maps a wnid to the synset's sense number for each of its lemmas (for
        NLTK-style lookups such as ``christ.n.01`` -> ``jesus.n.01``); the snapshot has them.
        """
        self.graph = graph
        self._senses = senses or {}
        self._aliases: dict[tuple[str, int], str] | None = None
        with gc_paused():
            self._by_name: dict[str, str] = {d["name"]: n for n, d in graph.nodes(data=True)}
        self._paths: dict[str, tuple[tuple[str, ...], ...]] = {}
        self._ancestors: dict[str, frozenset[str]] = {}
        self._min_depth: dict[str, int] = {}

    @classmethod
    def load(cls) -> WordNet:
        """The committed WordNet 3.0 noun snapshot (loaded once, then cached)."""
        return _load_default()

    # -- lookup -------------------------------------------------------------------------
    def wnid(self, key: str) -> str:
        """The wnid of ``key`` (``"dog.n.01"`` or ``"n02084071"``); KeyError if unknown.

        Names resolve as NLTK's ``synset()``: ``lemma.n.NN`` is the NN-th noun sense of the
        lemma (case-insensitive), so ``christ.n.01`` is jesus.n.01."""
        if key in self.graph:
            return key
        found = self._by_name.get(key)
        if found is None:
            found = self._alias(key)
        if found is None:
            raise KeyError(
                f"{key!r} is not a WordNet 3.0 noun synset (expected a name like 'dog.n.01' or a wnid like 'n02084071')"
            )
        return found

    def _alias(self, key: str) -> str | None:
        parts = key.lower().rsplit(".", 2)
        if len(parts) != 3 or parts[1] != "n" or not parts[2].isdigit():
            return None
        canonical = self._by_name.get(f"{parts[0]}.n.{int(parts[2]):02d}")
        if canonical is not None:
            return canonical
        if self._aliases is None:  # synsets whose lemmas are all sense 1 need no entry
            nodes = self.graph.nodes
            self._aliases = {
                (lemma.lower(), sense): w
                for w, senses in self._senses.items()
                for lemma, sense in zip(nodes[w]["lemmas"], senses, strict=True)
            }
        return self._aliases.get((parts[0], int(parts[2])))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return key in self.graph or key in self._by_name or self._alias(key) is not None

    def __len__(self) -> int:
        return int(self.graph.number_of_nodes())

    def __iter__(self) -> Iterator[str]:
        return iter(self.graph)

    def name(self, key: str) -> str:
        """NLTK synset name, e.g. ``"dog.n.01"``."""
        return str(self.graph.nodes[self.wnid(key)]["name"])

    def lemmas(self, key: str) -> list[str]:
        """Lemma names in NLTK order (underscores for spaces)."""
        return list(self.graph.nodes[self.wnid(key)]["lemmas"])

    def definition(self, key: str) -> str:
        """The gloss without examples (NLTK's ``Synset.definition()``)."""
        return str(self.graph.nodes[self.wnid(key)]["definition"])

    # -- structure ----------------------------------------------------------------------
    def hypernyms(self, key: str) -> list[str]:
        """Direct hypernyms then instance hypernyms (each sorted by name)."""
        return list(self.graph.succ[self.wnid(key)])

    def hyponyms(self, key: str) -> list[str]:
        """Direct hyponyms then instance hyponyms (each sorted by name)."""
        pred = self.graph.pred[self.wnid(key)]
        nodes = self.graph.nodes
        return sorted(pred, key=lambda c: (pred[c]["kind"] != HYPERNYM, nodes[c]["name"]))

    def hypernym_paths(self, key: str) -> list[list[str]]:
        """Paths from the root (entity.n.01) down to the synset itself, as NLTK's
        ``Synset.hypernym_paths()``: instance hypernyms are followed too."""
        return [list(p) for p in self._hypernym_paths(self.wnid(key))]

    def ancestors(self, key: str) -> frozenset[str]:
        """Every node on some hypernym path of the synset, the synset itself included."""
        return self._ancestors_of(self.wnid(key))

    def min_depth(self, key: str) -> int:
        """Length of the shortest hypernym path to the root (NLTK's ``min_depth``)."""
        return self._depth(self.wnid(key))

    # -- memoised recursions (the noun hierarchy is acyclic, at most 20 levels deep) -----
    def _hypernym_paths(self, w: str) -> tuple[tuple[str, ...], ...]:
        paths = self._paths.get(w)
        if paths is None:
            parents = self.graph.succ[w]
            if not parents:
                paths = ((w,),)
            else:
                paths = tuple((*p, w) for h in parents for p in self._hypernym_paths(h))
            self._paths[w] = paths
        return paths

    def _ancestors_of(self, w: str) -> frozenset[str]:
        anc = self._ancestors.get(w)
        if anc is None:
            acc = {w}
            for h in self.graph.succ[w]:
                acc |= self._ancestors_of(h)
            anc = frozenset(acc)
            self._ancestors[w] = anc
        return anc

    def _depth(self, w: str) -> int:
        d = self._min_depth.get(w)
        if d is None:
            parents = self.graph.succ[w]
            d = 1 + min(self._depth(h) for h in parents) if parents else 0
            self._min_depth[w] = d
        return d


def _parse(raw: bytes) -> tuple[Any, dict[str, tuple[int, ...]]]:
    """The DiGraph and the per-lemma sense numbers from the (gzipped) snapshot bytes."""
    with gc_paused():
        return _parse_text((gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8"))



def _parse_text(text: str) -> tuple[Any, dict[str, tuple[int, ...]]]:
    graph = nx.DiGraph()
    # Filled through networkx's adjacency dicts (_node/_succ/_pred, shared edge-data dicts, as
    # add_edge does): three times faster than add_nodes_from/add_edges_from on 82k nodes.
    node, succ, pred = graph._node, graph._succ, graph._pred
    senses: dict[str, tuple[int, ...]] = {}
    names: list[str] = []
    linked: list[tuple[str, str]] = []  # (wnid, parents field), parallel to names
    for line in text.split("\n"):
        if not line or line[0] == "#":
            continue
        offset, name, lemmas, sense, parents, definition = line.split("\t")
        wnid = "n" + offset
        if sense != "1":
            senses[wnid] = tuple(int(x) for x in sense.split(" "))
        node[wnid] = {"name": name, "lemmas": tuple(lemmas.split(" ")), "definition": definition}
        succ[wnid] = {}
        pred[wnid] = {}
        if parents:
            names.append(name)
            linked.append((wnid, parents))
    # Hypernym edges before instance edges, children by name: dicts keep insertion order, so
    # graph.succ lists a synset's parents and graph.pred its children in NLTK's order.
    instance_edges: list[tuple[str, str]] = []
    for i in sorted(range(len(names)), key=names.__getitem__):
        wnid, parents = linked[i]
        for p in parents.split(" "):
            if p[0] == "h":
                parent = "n" + p[1:]
                succ[wnid][parent] = pred[parent][wnid] = {"kind": HYPERNYM}
            else:
                instance_edges.append((wnid, "n" + p[1:]))
    for wnid, parent in instance_edges:
        succ[wnid][parent] = pred[parent][wnid] = {"kind": INSTANCE}
    return graph, senses


@lru_cache(maxsize=1)
def _load_default() -> WordNet:
    raw = resources.files("errortaxa.engine.knowledge.data").joinpath(SNAPSHOT).read_bytes()
    wordnet = WordNet(*_parse(raw))
    # cached for the life of the process: its few hundred thousand containers are moved out of the
    # cyclic collector's reach, so that its full collections (~0.2 s each) do not walk them again
    gc.freeze()
    return wordnet
