"""Class x class WordNet relations over a vocabulary, as numpy matrices (computed once, cached).

Definitions (``C`` classes, "ancestor" = node on some hypernym path, instance hypernyms
followed, the class itself included; see :mod:`errortaxa.engine.knowledge.wordnet`):

* ``ancestor[i, j]``: class i is an ancestor of class j, ``i != j``.
* ``sibling[i, j]``: ``i != j`` share a direct parent (hypernym or instance hypernym).
* ``lca_depth[i, j]``: the largest ``min_depth`` of a common ancestor of i and j (the root
  entity.n.01 has depth 0), the diagonal included. With multiple inheritance an ancestor can
  be deeper than its descendant (canine.n.02: 12; norfolk_terrier.n.01: 11, via
  domestic_animal.n.01), so two terriers have lca_depth 12.
* ``distance[i, j]``: ``min`` over common ancestors ``a`` of ``up(i, a) + up(j, a)``, where
  ``up(x, a)`` is the number of edges of the shortest child -> parent path from x to a: the
  shortest path between i and j that goes up to a common ancestor and down again, as NLTK's
  ``Synset.shortest_path_distance``. 0 on the diagonal; -1 (and ``lca_depth`` -1) when two
  classes share no ancestor, which cannot happen in WordNet's single-rooted noun hierarchy.

All matrices are read-only arrays shared by every caller of the same (wordnet, vocab) pair.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.engine.knowledge.wordnet import WordNet

__all__ = [
    "ClassRelations",
    "ancestor_incidence",
    "class_relations",
    "group_of",
    "has_ancestor",
    "shankar_group_of",
]

ORGANISM = "organism.n.01"
ARTIFACT = "artifact.n.01"
DOG = "dog.n.01"


@dataclass(frozen=True)
class ClassRelations:
    """Pairwise relations of the C classes of a vocabulary (see the module docstring)."""

    ancestor: np.ndarray  # bool[C, C]
    sibling: np.ndarray  # bool[C, C]
    lca_depth: np.ndarray  # int16[C, C]
    distance: np.ndarray  # int16[C, C]


def ancestor_incidence(wordnet: WordNet, vocab: Vocabulary) -> tuple[list[str], np.ndarray]:
    """``(nodes, A)``: the sorted wnids of every ancestor of some class, and ``bool[C, K]`` with
    ``A[i, k]`` = node k lies on some hypernym path of class i (class itself included)."""
    nodes, inc = _incidence(wordnet, vocab)
    return list(nodes), inc


def has_ancestor(wordnet: WordNet, vocab: Vocabulary, key: str) -> np.ndarray:
    """``bool[C]``: classes with the synset ``key`` (name or wnid) on a hypernym path."""
    wnid = wordnet.wnid(key)
    nodes, inc = _incidence(wordnet, vocab)
    k = bisect_left(nodes, wnid)
    if k < len(nodes) and nodes[k] == wnid:
        return inc[:, k].copy()
    return np.zeros(len(vocab), dtype=bool)


def class_relations(wordnet: WordNet, vocab: Vocabulary) -> ClassRelations:
    """The cached class x class relation matrices of ``vocab``."""
    return _relations(wordnet, vocab)


def group_of(wordnet: WordNet, vocab: Vocabulary) -> list[str]:
    """Per class: ``"organism"`` (has ancestor organism.n.01), else ``"artifact"``
    (artifact.n.01), else ``"other"`` -- the reference's breakdown."""
    org = has_ancestor(wordnet, vocab, ORGANISM)
    art = has_ancestor(wordnet, vocab, ARTIFACT)
    return ["organism" if o else "artifact" if a else "other" for o, a in zip(org, art, strict=True)]


def shankar_group_of(wordnet: WordNet, vocab: Vocabulary) -> list[str]:
    """Per class, Shankar et al.'s split: ``"dogs"`` (dog.n.01; 118 ImageNet classes),
    ``"other_animals"`` (other organism.n.01 classes; 292) or ``"objects"`` (the rest; 590)."""
    dog = has_ancestor(wordnet, vocab, DOG)
    org = has_ancestor(wordnet, vocab, ORGANISM)
    return ["dogs" if d else "other_animals" if o else "objects" for d, o in zip(dog, org, strict=True)]


# -- computation ------------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _up_distances(wordnet: WordNet, wnid: str) -> dict[str, int]:
    """Shortest child -> parent distance from ``wnid`` to each of its ancestors (BFS)."""
    succ = wordnet.graph.succ
    dist = {wnid: 0}
    queue = deque([wnid])
    while queue:
        node = queue.popleft()
        for parent in succ[node]:
            if parent not in dist:
                dist[parent] = dist[node] + 1
                queue.append(parent)
    return dist


@lru_cache(maxsize=8)
def _incidence(wordnet: WordNet, vocab: Vocabulary) -> tuple[tuple[str, ...], np.ndarray]:
    ups = _ups(wordnet, vocab)
    nodes = tuple(sorted(set().union(*ups))) if ups else ()
    col = {n: k for k, n in enumerate(nodes)}
    rows = np.repeat(np.arange(len(ups)), [len(u) for u in ups])
    cols = np.fromiter((col[a] for u in ups for a in u), dtype=np.int64, count=len(rows))
    inc = np.zeros((len(ups), len(nodes)), dtype=bool)
    inc[rows, cols] = True
    return nodes, _readonly(inc)


@lru_cache(maxsize=8)
def _ups(wordnet: WordNet, vocab: Vocabulary) -> tuple[dict[str, int], ...]:
    return tuple(_up_distances(wordnet, wordnet.wnid(w)) for w in vocab.wnids)


@lru_cache(maxsize=8)
def _relations(wordnet: WordNet, vocab: Vocabulary) -> ClassRelations:
    nodes, inc = _incidence(wordnet, vocab)
    ups = _ups(wordnet, vocab)
    c = len(vocab)
    col = {n: k for k, n in enumerate(nodes)}
    offdiag = ~np.eye(c, dtype=bool)

    # ancestor[i, j] = inc[j, column of class i]
    self_cols = np.array([col[wordnet.wnid(w)] for w in vocab.wnids], dtype=np.int64)
    ancestor = inc[:, self_cols].T & offdiag

    # siblings: shared direct parents (float matmul: BLAS, exact for these small counts)
    parents = sorted({p for w in vocab.wnids for p in wordnet.graph.succ[wordnet.wnid(w)]})
    pcol = {p: k for k, p in enumerate(parents)}
    par = np.zeros((c, len(parents)), dtype=np.float32)
    for i, w in enumerate(vocab.wnids):
        for p in wordnet.graph.succ[wordnet.wnid(w)]:
            par[i, pcol[p]] = 1.0
    sibling = ((par @ par.T) > 0) & offdiag

    # lca_depth: per depth level, do i and j share an ancestor at that depth? (ascending: max)
    depth = np.array([wordnet.min_depth(n) for n in nodes], dtype=np.int16)
    lca = np.full((c, c), -1, dtype=np.int16)
    incf = inc.astype(np.float32)
    for d in np.unique(depth):
        m = incf[:, depth == d]
        lca[(m @ m.T) > 0] = d

    # distance: min over common ancestors a of up(i, a) + up(j, a); one update per ancestor,
    # restricted to the classes below it (sum of squared class counts: ~5M for ImageNet).
    up = np.zeros(inc.shape, dtype=np.int16)
    for i, u in enumerate(ups):
        for a, d in u.items():
            up[i, col[a]] = d
    big = np.iinfo(np.int16).max // 2
    dist = np.full((c, c), big, dtype=np.int16)
    for k in range(len(nodes)):
        members = np.flatnonzero(inc[:, k])
        if len(members) == 1:
            continue  # only the class's own diagonal, set below
        u = up[members, k]
        block = np.ix_(members, members)
        dist[block] = np.minimum(dist[block], u[:, None] + u[None, :])
    dist[dist == big] = -1
    np.fill_diagonal(dist, 0)

    return ClassRelations(
        ancestor=_readonly(ancestor),
        sibling=_readonly(sibling),
        lca_depth=_readonly(lca),
        distance=_readonly(dist),
    )
