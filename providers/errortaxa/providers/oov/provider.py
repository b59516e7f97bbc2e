"""The ``oov`` feature provider: test ``fine_grained_oov`` (REFERENCE.md step 6).

For the rows the engine asks about: the image embedding (given, or computed once and cached on disk),
the kNN gate over a training-set index (or given neighbour classes), the WordNet proposals of the
(prediction, target) pair, and zero-shot scoring of the image against their prompts. It holds when
the best prompt's synset is not one of the vocabulary's classes; the evidence lists the top prompts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from errortaxa.engine.features import FeatureResult
from errortaxa.providers.oov.config import OOVConfig
from errortaxa.providers.oov.declaration import TEST_NAME, FineGrainedOOVParams
from errortaxa.providers.oov.embed import ImageEmbedder, set_deterministic
from errortaxa.providers.oov.errors import TrainIndexError
from errortaxa.providers.oov.images import ImageInput, ImageResolver
from errortaxa.providers.oov.knn import TrainIndex
from errortaxa.providers.oov.model import ClipEncoder
from errortaxa.providers.oov.proposals import ProposalGenerator
from errortaxa.providers.oov.scoring import top_indices, zero_shot
from errortaxa.providers.oov.text import TextEmbeddings
from pydantic import ValidationError


@dataclass
class _Inputs:
    """Per-request inputs (gRPC): image bytes, precomputed embeddings and neighbour classes, by image name
    (or by a per-sample key that ``names`` maps to the image name to look for on disk and to report)."""

    image_bytes: Mapping[str, bytes] = field(default_factory=dict)
    embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)
    knn_classes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)


class _Shared:
    """What every bound view of a provider shares: model, caches, index, generator."""

    def __init__(
        self,
        config: OOVConfig,
        *,
        same_superclass: np.ndarray,
        wordnet: Any,
        vocab: Any,
        encoder: ClipEncoder | None,
        index: TrainIndex | str | None,
    ) -> None:
        self.config = config
        self.wordnet = wordnet
        self.vocab = vocab
        self.generator = ProposalGenerator(wordnet=wordnet, vocab=vocab, same_superclass=same_superclass)
        self.same_superclass = self.generator.same_superclass
        self.num_classes = len(self.generator.class_wnids)
        self.in_vocabulary = self.generator.in_vocabulary
        self.encoder = encoder if encoder is not None else ClipEncoder(config)
        set_deterministic()
        self.embedder = ImageEmbedder.from_encoder(self.encoder)
        self.text = TextEmbeddings(self.encoder, self.generator.lemmas, template=config.template)
        self.resolver = ImageResolver(config.images)
        idx = index if index is not None else config.index
        self.index: TrainIndex | None = TrainIndex.load(idx) if isinstance(idx, str) else idx
        if self.index is not None:
            sid = self.index.space_id
            if sid is not None and sid != self.encoder.space_id:
                raise TrainIndexError(
                    f"the training-set index was built with another model ({self.index.meta.get('model')}, "
                    f"{sid}); this provider uses {self.encoder.space_id}: rebuild the index"
                )
            if self.index.dim != self.encoder.embed_dim:
                raise TrainIndexError(f"index dim {self.index.dim} != model dim {self.encoder.embed_dim}")


class OOVProvider:
    """The engine's ``oov`` FeatureProvider (see docs/ARCHITECTURE.md and docs/OOV.md)."""

    name = "oov"
    tests = (TEST_NAME,)

    def __init__(
        self,
        config: OOVConfig | Mapping[str, Any] | None = None,
        *,
        same_superclass: np.ndarray,
        wordnet: Any,
        vocab: Any,
        encoder: ClipEncoder | None = None,
        index: TrainIndex | str | None = None,
        image_bytes: Mapping[str, bytes] | None = None,
        embeddings: Mapping[str, np.ndarray] | None = None,
        knn_classes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        cfg = config if isinstance(config, OOVConfig) else OOVConfig.from_mapping(config)
        self._shared = _Shared(
            cfg, same_superclass=same_superclass, wordnet=wordnet, vocab=vocab, encoder=encoder, index=index
        )
        self._inputs = _Inputs(image_bytes or {}, embeddings or {}, knn_classes or {})
        self.last_stats: dict[str, Any] = {}

    @property
    def config(self) -> OOVConfig:
        return self._shared.config

    @property
    def encoder(self) -> ClipEncoder:
        return self._shared.encoder

    @property
    def embedder(self) -> ImageEmbedder:
        return self._shared.embedder

    @property
    def index(self) -> TrainIndex | None:
        return self._shared.index

    @property
    def generator(self) -> ProposalGenerator:
        return self._shared.generator

    def bind(
        self,
        *,
        image_bytes: Mapping[str, bytes] | None = None,
        embeddings: Mapping[str, np.ndarray] | None = None,
        knn_classes: Mapping[str, Sequence[int]] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> OOVProvider:
        """A view with per-request inputs (by image name) that shares the model and caches. The
        keys may instead be per-sample keys (the batch's ``images`` then hold them): ``names`` maps
        a key to the sample's image name, looked up on disk when no embedding or bytes are given
        for the key, and named in reasons."""
        view = object.__new__(OOVProvider)
        view._shared = self._shared
        view._inputs = _Inputs(image_bytes or {}, embeddings or {}, knn_classes or {}, names or {})
        view.last_stats = {}
        return view

    # -- pieces ------------------------------------------------------------------------------------
    def image_embeddings(
        self, names: Sequence[str | None]
    ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """(float32 [n, D] unit vectors, ok bool[n], reason per row) for image names."""
        sh, inp = self._shared, self._inputs
        n = len(names)
        dim = sh.encoder.embed_dim
        vecs = np.zeros((n, dim), dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        todo: list[int] = []
        sources: list[ImageInput] = []
        shown = [inp.names.get(name, name) if name else "" for name in names]
        for i, name in enumerate(names):
            if not name:
                reasons[i] = "no image for the sample"
                continue
            given = inp.embeddings.get(name)
            if given is not None:
                v = np.asarray(given, dtype=np.float32).reshape(-1)
                norm = float(np.linalg.norm(v))
                if v.shape[0] != dim or not np.isfinite(norm) or norm == 0:
                    reasons[i] = f"given embedding of {shown[i]} has dim {v.shape[0]} (model: {dim}) or is zero"
                    continue
                vecs[i], ok[i] = v / norm, True
                continue
            data = inp.image_bytes.get(name)
            if data is not None:
                todo.append(i)
                sources.append(data)
                continue
            path = sh.resolver.resolve(shown[i])
            if path is None:
                where = ", ".join(str(r) for r in sh.resolver.roots) or "no oov.images directories configured"
                reasons[i] = f"image not found: {shown[i]} ({where})"
                continue
            todo.append(i)
            sources.append(path)
        if todo:
            res = sh.embedder.embed(sources)
            self.last_stats["embedding"] = res.stats.as_dict()
            for j, i in enumerate(todo):
                if res.ok[j]:
                    vecs[i], ok[i] = res.vectors[j], True
                else:
                    reasons[i] = f"{res.errors[j]} ({shown[i]})"
        return vecs, ok, reasons

    def neighbour_classes(
        self, names: Sequence[str | None], vecs: np.ndarray, ok: np.ndarray, k: int
    ) -> tuple[list[np.ndarray | None], list[str | None]]:
        """Classes of the k nearest training images per row (given ones first, else the index)."""
        sh, inp = self._shared, self._inputs
        out: list[np.ndarray | None] = [None] * len(names)
        reasons: list[str | None] = [None] * len(names)
        query: list[int] = []
        for i, name in enumerate(names):
            given = inp.knn_classes.get(name) if name else None
            if given is not None:
                out[i] = np.asarray(given, dtype=np.int64)[:k]
            elif ok[i]:
                query.append(i)
        if query:
            if sh.index is None:
                for i in query:
                    reasons[i] = (
                        "no training-set index for the kNN gate (set oov.index; see errortaxa oov index)"
                    )
            else:
                classes = sh.index.neighbour_classes(vecs[query], k, device=sh.encoder.device)
                for j, i in enumerate(query):
                    out[i] = classes[j].astype(np.int64)
        return out, reasons

    # -- the FeatureProvider method ------------------------------------------------------------------
    def evaluate(self, test: str, params: Mapping[str, Any], batch: Any, rows: np.ndarray) -> FeatureResult:
        if test != TEST_NAME:
            raise ValueError(f"the oov provider has no test {test!r} (it has: {', '.join(self.tests)})")
        sh = self._shared
        try:
            p = FineGrainedOOVParams.model_validate(dict(params or {}))
        except ValidationError as exc:  # the compiler checks params against the declaration first
            wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"invalid parameters of oov/{TEST_NAME}: {wrong}") from None
        k = p.knn_k or p.k or sh.config.k
        top = p.top or sh.config.top
        use_gate = p.gate
        rows = np.asarray(rows, dtype=np.int64)
        m = int(rows.shape[0])
        holds = np.zeros(m, dtype=bool)
        known = np.zeros(m, dtype=bool)
        reason: list[str | None] = [None] * m
        evidence: list[Any] = [None] * m
        self.last_stats = {"rows": m}
        if m == 0:
            return FeatureResult(holds, known, reason, evidence)
        images = getattr(batch, "images", None)
        if images is None:
            return FeatureResult.unknown(m, "the samples have no image names")
        names = [images[int(r)] for r in rows]
        preds = np.asarray(batch.pred, dtype=np.int64)[rows]
        targets = np.asarray(batch.target, dtype=np.int64)[rows]

        vecs, ok, emb_reasons = self.image_embeddings(names)
        for i in range(m):
            if not ok[i]:
                reason[i] = emb_reasons[i]
        if use_gate:
            knn, knn_reasons = self.neighbour_classes(names, vecs, ok, k)
            gate = np.zeros(m, dtype=bool)
            for i in range(m):
                if not ok[i]:
                    continue
                cls = knn[i]
                if cls is None:
                    reason[i] = knn_reasons[i] or "no kNN classes"
                    continue
                valid = cls[(cls >= 0) & (cls < sh.num_classes)]
                known[i] = True
                gate[i] = bool(sh.same_superclass[preds[i], valid].any()) if valid.size else False
        else:
            known[:] = ok
            gate = ok.copy()
        self.last_stats["gate_passed"] = int(gate.sum())

        scored = np.flatnonzero(gate)
        if scored.size:
            self._score(scored, vecs, preds, targets, holds, evidence, top)
        self.last_stats["holds"] = int(holds.sum())
        return FeatureResult(holds, known, reason, evidence)

    def _score(
        self,
        scored: np.ndarray,
        vecs: np.ndarray,
        preds: np.ndarray,
        targets: np.ndarray,
        holds: np.ndarray,
        evidence: list[Any],
        top: int,
    ) -> None:
        sh = self._shared
        pair_props: dict[tuple[int, int], list[tuple[str, str]]] = {}
        for i in scored:
            key = (int(preds[i]), int(targets[i]))
            if key not in pair_props:
                pair_props[key] = [(p.wnid, p.lemma) for p in sh.generator.generate(*key)]
        synsets = list(dict.fromkeys(w for props in pair_props.values() for w, _ in props))
        sh.text.ensure(synsets)
        # one text table for this call: each synset's prompts contiguous
        offsets: dict[str, int] = {}
        blocks = []
        pos = 0
        for w in synsets:
            e = sh.text.get(w)
            offsets[w] = pos
            pos += e.shape[0]
            blocks.append(e)
        table = np.concatenate(blocks) if blocks else np.zeros((0, sh.encoder.embed_dim), np.float32)
        pair_index: dict[tuple[int, int], np.ndarray] = {}
        for key, props in pair_props.items():
            idx = []
            seen_syn: dict[str, int] = {}
            for w, _ in props:
                j = seen_syn.get(w, 0)
                idx.append(offsets[w] + j)
                seen_syn[w] = j + 1
            pair_index[key] = np.asarray(idx, dtype=np.int64)
        prompt_rows = [pair_index[(int(preds[i]), int(targets[i]))] for i in scored]
        probs = zero_shot(
            vecs[scored], table, prompt_rows, temperature=sh.config.temperature, device=sh.encoder.device
        )
        for i, p in zip(scored, probs, strict=True):
            props = pair_props[(int(preds[i]), int(targets[i]))]
            order = top_indices(p, max(top, 1))
            best_wnid = props[int(order[0])][0]
            if best_wnid not in sh.in_vocabulary:
                holds[i] = True
                evidence[i] = {
                    "proposals": [
                        {
                            "wnid": props[int(j)][0],
                            "lemma": props[int(j)][1],
                            "probability": round(float(p[int(j)]), 6),
                        }
                        for j in order[:top]
                    ],
                    "num_prompts": len(props),
                }


SHARED_MODELS_KEPT = 2
_shared_models: OrderedDict[str, tuple[ClipEncoder, TrainIndex | None]] = OrderedDict()
_shared_models_lock = threading.Lock()


def shared_model(config: OOVConfig) -> tuple[ClipEncoder, TrainIndex | None]:
    """The CLIP encoder and the training-set index (``config.index``) of a config, built once per
    config content in this process and shared by the providers made from it (a study's compared
    taxonomy, a server's taxonomy versions, the Ray tasks of one worker); the last
    ``SHARED_MODELS_KEPT`` configs are kept. A checkpoint or index rebuilt on disk since (another
    modification time) is loaded afresh."""
    files = [config.checkpoint, *((Path(config.index) / n for n in ("meta.json", "embeddings.npy"))
                                  if config.index is not None else ())]
    stamps = [os.stat(f).st_mtime_ns if f is not None and os.path.exists(f) else None for f in files]
    key = json.dumps([dataclasses.asdict(config), stamps], sort_keys=True, default=str)
    with _shared_models_lock:
        got = _shared_models.pop(key, None)
        if got is None:
            encoder = ClipEncoder(config)
            got = (encoder, None if config.index is None else TrainIndex.load(config.index))
        _shared_models[key] = got
        while len(_shared_models) > SHARED_MODELS_KEPT:
            _shared_models.popitem(last=False)
    return got
