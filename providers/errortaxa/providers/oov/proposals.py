"""WordNet proposals for the fine-grained OOV test (REFERENCE.md step 6); pure Python, no torch.

Candidates, in this order, each synset once:

1. the predicted synset;
2. every ImageNet class that shares a superclass with the prediction (class-index order);
3. the direct siblings of the predicted synset: the hyponyms of each of its direct hypernyms
   (``hypernym`` edges only, as NLTK's ``Synset.hypernyms()`` / ``hyponyms()``);
4. on each hypernym path of the prediction (root first), every node from the first one whose lemma
   names include a meta label onwards.

Siblings and ancestors that lie on any hypernym path of the target (the target included) are left
out. Each lemma name of each candidate, lower-cased with underscores as spaces, is one prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

META_LABELS: tuple[str, ...] = (
    # from the ImageNet-X paper
    "device", "dog", "commodity", "bird", "structure", "covering", "wheeled_vehicle", "food",
    "equipment", "insect", "vehicle", "furniture", "primate", "vessel", "snake", "natural_object",
    # more general
    "organism", "geological_formation", "clothing", "container",
)  # fmt: skip


class Proposal(NamedTuple):
    """One prompt: the candidate synset's wnid and one of its lemma names (lower case, spaces)."""

    wnid: str
    lemma: str


def prompt_lemma(lemma: str) -> str:
    """``Carassius_auratus`` -> ``carassius auratus`` (the reference's prompt form)."""
    return lemma.lower().replace("_", " ")


def _direct_hypernyms(wordnet: Any, wnid: str) -> list[str]:
    """Direct (non-instance) hypernyms, as NLTK's ``Synset.hypernyms()``."""
    graph = getattr(wordnet, "graph", None)
    if graph is not None and wnid in graph:
        return [
            p for p in graph.successors(wnid) if graph.edges[wnid, p].get("kind", "hypernym") == "hypernym"
        ]
    return list(wordnet.hypernyms(wnid))


def _direct_hyponyms(wordnet: Any, wnid: str) -> list[str]:
    """Direct (non-instance) hyponyms, as NLTK's ``Synset.hyponyms()``."""
    graph = getattr(wordnet, "graph", None)
    if graph is not None and wnid in graph:
        return [
            c for c in graph.predecessors(wnid) if graph.edges[c, wnid].get("kind", "hypernym") == "hypernym"
        ]
    return list(wordnet.hyponyms(wnid))


def _class_wnids(vocab: Any) -> list[str]:
    wnids = getattr(vocab, "wnids", None)
    if wnids is None:
        wnids = vocab
    return [str(w) for w in wnids]


class ProposalGenerator:
    """Generates (and memoises) the proposals of (prediction, target) pairs."""

    def __init__(
        self,
        *,
        wordnet: Any,
        vocab: Any,
        same_superclass: np.ndarray,
        meta_labels: Iterable[str] = META_LABELS,
    ) -> None:
        self.wordnet = wordnet
        self.class_wnids = _class_wnids(vocab)
        n = len(self.class_wnids)
        matrix = np.asarray(same_superclass, dtype=bool)
        if matrix.shape != (n, n):
            raise ValueError(f"same_superclass has shape {matrix.shape}, expected ({n}, {n})")
        self.same_superclass = matrix
        self.in_vocabulary = frozenset(self.class_wnids)
        self.meta_labels = frozenset(meta_labels)
        self._lemmas: dict[str, list[str]] = {}
        self._paths: dict[str, list[list[str]]] = {}
        self._cache: dict[tuple[int, int], list[Proposal]] = {}

    def lemmas(self, wnid: str) -> list[str]:
        got = self._lemmas.get(wnid)
        if got is None:
            got = [prompt_lemma(lemma) for lemma in self.wordnet.lemmas(wnid)]
            self._lemmas[wnid] = got
        return got

    def _hypernym_paths(self, wnid: str) -> list[list[str]]:
        got = self._paths.get(wnid)
        if got is None:
            got = [list(path) for path in self.wordnet.hypernym_paths(wnid)]
            self._paths[wnid] = got
        return got

    def _check(self, index: int, what: str) -> str:
        if not 0 <= index < len(self.class_wnids):
            raise ValueError(f"{what} {index} is not a class index (0..{len(self.class_wnids) - 1})")
        return self.class_wnids[index]

    def candidates(self, pred: int, target: int) -> list[str]:
        """The candidate synsets (wnids) in the reference's order, each once."""
        pred_wnid = self._check(int(pred), "pred")
        target_wnid = self._check(int(target), "target")
        blocked = {node for path in self._hypernym_paths(target_wnid) for node in path}
        out: list[str] = []
        seen: set[str] = set()

        def add(wnid: str) -> None:
            if wnid not in seen:
                seen.add(wnid)
                out.append(wnid)

        add(pred_wnid)
        for j in np.flatnonzero(self.same_superclass[int(pred)]):
            add(self.class_wnids[int(j)])
        for parent in _direct_hypernyms(self.wordnet, pred_wnid):
            for sibling in _direct_hyponyms(self.wordnet, parent):
                if sibling not in blocked:
                    add(sibling)
        meta = self.meta_labels
        for path in self._hypernym_paths(pred_wnid):
            covered = False
            for node in path:
                if not covered and not meta.isdisjoint(self.wordnet.lemmas(node)):
                    covered = True
                if covered and node not in blocked:
                    add(node)
        return out

    def generate(self, pred: int, target: int) -> list[Proposal]:
        """One :class:`Proposal` per (candidate synset, lemma name), in order."""
        key = (int(pred), int(target))
        got = self._cache.get(key)
        if got is None:
            got = [Proposal(w, lemma) for w in self.candidates(*key) for lemma in self.lemmas(w)]
            self._cache[key] = got
        return list(got)


_GENERATORS: dict[tuple[int, int, int], tuple[ProposalGenerator, Any]] = {}


def generator_for(*, wordnet: Any, vocab: Any, same_superclass: np.ndarray) -> ProposalGenerator:
    """A memoised generator for these objects (keyed by identity; kept alive with them)."""
    key = (id(wordnet), id(vocab), id(same_superclass))
    hit = _GENERATORS.get(key)
    if hit is not None and all(
        a is b for a, b in zip(hit[1], (wordnet, vocab, same_superclass), strict=True)
    ):
        return hit[0]
    gen = ProposalGenerator(wordnet=wordnet, vocab=vocab, same_superclass=same_superclass)
    if len(_GENERATORS) > 8:
        _GENERATORS.clear()
    _GENERATORS[key] = (gen, (wordnet, vocab, same_superclass))
    return gen


def generate(
    pred: int, target: int, *, wordnet: Any, vocab: Any, same_superclass: np.ndarray
) -> list[Proposal]:
    """The proposals of REFERENCE.md step 6 for one (prediction, target) pair of class indices."""
    return generator_for(wordnet=wordnet, vocab=vocab, same_superclass=same_superclass).generate(pred, target)


def generate_many(
    pairs: Iterable[tuple[int, int]], *, wordnet: Any, vocab: Any, same_superclass: np.ndarray
) -> list[list[Proposal]]:
    """:func:`generate` for many pairs with one generator (what ``oov proposals --pairs`` needs)."""
    gen = generator_for(wordnet=wordnet, vocab=vocab, same_superclass=same_superclass)
    return [gen.generate(p, t) for p, t in pairs]


def proposals_json(proposals: Sequence[Proposal]) -> list[dict[str, str]]:
    """``[{"wnid": ..., "lemma": ...}, ...]`` as ``errortaxa oov proposals`` prints it."""
    return [{"wnid": p.wnid, "lemma": p.lemma} for p in proposals]
