"""Prompt embeddings, cached per synset in memory and per prompt on disk (keyed by the model id)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from errortaxa.providers.oov.cache import EmbeddingCache
from errortaxa.providers.oov.model import ClipEncoder


def prompt_digest(prompt: str) -> bytes:
    return hashlib.blake2b(prompt.encode("utf-8"), digest_size=16, person=b"errortaxa-prompt").digest()


class TextEmbeddings:
    """Embeddings of ``template.format(lemma)`` for every lemma of a synset, computed once per synset."""

    def __init__(
        self, encoder: ClipEncoder, lemmas: Callable[[str], Sequence[str]], *, template: str | None = None
    ) -> None:
        self.encoder = encoder
        self.lemmas = lemmas
        self.template = template or encoder.config.template
        root = encoder.config.resolved_cache_dir()
        self.cache = (
            EmbeddingCache(root, encoder.model_id, namespace="text", dim=encoder.embed_dim)
            if root is not None
            else None
        )
        self._synsets: dict[str, np.ndarray] = {}
        self.encoded_prompts = 0

    def prompts(self, wnid: str) -> list[str]:
        return [self.template.format(lemma) for lemma in self.lemmas(wnid)]

    def ensure(self, wnids: Iterable[str]) -> None:
        """Compute (in batches) the embeddings of synsets not seen yet."""
        todo = [w for w in dict.fromkeys(wnids) if w not in self._synsets]
        if not todo:
            return
        per = [self.prompts(w) for w in todo]
        flat = [p for ps in per for p in ps]
        unique = list(dict.fromkeys(flat))
        vecs = np.zeros((len(unique), self.encoder.embed_dim), dtype=np.float32)
        if self.cache is not None:
            digests = [prompt_digest(p) for p in unique]
            found, got = self.cache.get(digests)
            vecs[found] = got[found]
        else:
            digests = []
            found = np.zeros(len(unique), dtype=bool)
        missing = np.flatnonzero(~found)
        if missing.size:
            fresh = self.encoder.encode_texts([unique[i] for i in missing])
            vecs[missing] = fresh
            self.encoded_prompts += int(missing.size)
            if self.cache is not None:
                self.cache.put([digests[i] for i in missing], fresh)
        row = {p: i for i, p in enumerate(unique)}
        for w, ps in zip(todo, per, strict=True):
            self._synsets[w] = vecs[[row[p] for p in ps]] if ps else np.zeros((0, vecs.shape[1]), np.float32)

    def get(self, wnid: str) -> np.ndarray:
        """float32 [lemmas, D] unit vectors of one synset's prompts."""
        self.ensure([wnid])
        return self._synsets[wnid]
