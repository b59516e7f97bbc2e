"""A hand-made WordNet-like hierarchy for the OOV proposal tests (input data, not a stand-in
for the real graph, which other tests load)."""

from __future__ import annotations


class HandMadeWordNet:
    """A hand-made hierarchy; ``hypernyms``/``hyponyms`` are the non-instance relations."""

    def __init__(self, parents: dict[str, list[str]], lemmas: dict[str, list[str]]) -> None:
        self.parents = parents
        self._lemmas = lemmas

    def lemmas(self, w: str) -> list[str]:
        return list(self._lemmas[w])

    def hypernyms(self, w: str) -> list[str]:
        return list(self.parents.get(w, []))

    def hyponyms(self, w: str) -> list[str]:
        return sorted(c for c, ps in self.parents.items() if w in ps)

    def hypernym_paths(self, w: str) -> list[list[str]]:
        ps = self.parents.get(w, [])
        if not ps:
            return [[w]]
        return [[*p, w] for h in ps for p in self.hypernym_paths(h)]
