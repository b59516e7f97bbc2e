"""Synthetic images and model predictions, spread like real ones, for benchmarks and examples.

Label sets: about 80% one label, the rest two or three (extra labels from the target's
superclass or its most co-occurring class), 6% problematic, 2% empty.  Each model has an
accuracy between 0.65 and 0.9; its errors fall mostly on each image's few confusable classes
(the same for every model), the rest on other labels and random classes.
"""

from __future__ import annotations

import numpy as np
from errortaxa.engine import CompiledTaxonomy, SampleBatch
from errortaxa.engine.inputs import validation_image_name


def make_images(taxonomy: CompiledTaxonomy, n: int, seed: int = 0) -> SampleBatch:
    """n validation-style images with targets, label sets and problematic flags (pred = target)."""
    rng = np.random.default_rng(seed)
    c = len(taxonomy.vocabulary)
    target = rng.integers(0, c, n)
    related = _related(taxonomy, rng)
    sizes = rng.choice([0, 1, 2, 3], size=n, p=[0.02, 0.80, 0.13, 0.05])
    labels: list[list[int]] = []
    for t, k in zip(target.tolist(), sizes.tolist(), strict=True):
        extra = [int(x) for x in related[t][: max(k - 1, 0)]]
        labels.append([] if k == 0 else list(dict.fromkeys([t, *extra])))
    problematic = (sizes == 0) | (rng.random(n) < 0.045)
    return SampleBatch.from_lists(
        target=target, labels=labels, pred=target, problematic=problematic,
        images=[validation_image_name(i) for i in range(n)],
    )


def make_predictions(taxonomy: CompiledTaxonomy, images: SampleBatch, models: int, seed: int = 1) -> np.ndarray:
    """int16[models, n] top-1 predictions."""
    rng = np.random.default_rng(seed)
    n, c = len(images), len(taxonomy.vocabulary)
    related = _related(taxonomy, rng)
    confusable = np.array([related[t][:3] for t in images.target.tolist()])  # [n, 3]
    accuracy = rng.uniform(0.65, 0.9, size=(models, 1))
    draw = rng.random((models, n))
    which = rng.choice(3, size=(models, n), p=[0.6, 0.25, 0.15])
    pred = np.where(draw < accuracy, images.target[None, :], confusable[np.arange(n)[None, :], which])
    noise = (draw >= accuracy) & (rng.random((models, n)) < 0.2)
    pred[noise] = rng.integers(0, c, int(noise.sum()))
    return pred.astype(np.int16)


def _related(taxonomy: CompiledTaxonomy, rng: np.random.Generator) -> list[np.ndarray]:
    """Per class: three classes a model confuses it with (superclass mates first, then co-occurring)."""
    same = taxonomy.same_superclass & ~np.eye(len(taxonomy.vocabulary), dtype=bool)
    cooc = next(iter(taxonomy.cooccurrence.values()), None)
    out = []
    for k in range(same.shape[0]):
        mates = np.flatnonzero(same[k])
        picks = list(rng.permutation(mates)[:2]) if mates.size else []
        if cooc is not None:
            picks.append(int(np.argmax(cooc[k])))
        while len(picks) < 3:
            picks.append(int(rng.integers(0, same.shape[0])))
        out.append(np.array(picks[:3]))
    return out
