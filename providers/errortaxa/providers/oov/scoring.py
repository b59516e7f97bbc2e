"""Batched zero-shot scoring: softmax(temperature x cosine) of each image over its own prompt set."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def zero_shot(
    images: np.ndarray,
    texts: np.ndarray,
    prompt_rows: Sequence[np.ndarray],
    *,
    temperature: float = 100.0,
    device: torch.device | str = "cpu",
    chunk: int = 1024,
) -> list[np.ndarray]:
    """Probabilities per image over its prompts.

    ``images``: float32 [B, D] unit vectors; ``texts``: float32 [P, D] unit vectors of every prompt any
    image uses; ``prompt_rows[b]``: the rows of ``texts`` that image b is scored against, in order.
    One [b, P] matmul per chunk of images, then a gather into a padded [b, L] block and a masked
    softmax, all in fp32 (deterministic; TF32 is off, see embed.set_deterministic).
    """
    n = images.shape[0]
    if len(prompt_rows) != n:
        raise ValueError("one prompt set per image")
    out: list[np.ndarray] = []
    if n == 0:
        return out
    dev = torch.device(device)
    t = torch.from_numpy(np.ascontiguousarray(texts, dtype=np.float32)).to(dev)
    for start in range(0, n, chunk):
        rows = prompt_rows[start : start + chunk]
        b = len(rows)
        width = max((len(r) for r in rows), default=0)
        if width == 0:
            out.extend(np.zeros(0, np.float32) for _ in rows)
            continue
        idx = np.zeros((b, width), dtype=np.int64)
        mask = np.zeros((b, width), dtype=bool)
        for j, r in enumerate(rows):
            idx[j, : len(r)] = r
            mask[j, : len(r)] = True
        img = torch.from_numpy(np.ascontiguousarray(images[start : start + b], dtype=np.float32)).to(dev)
        # only the prompts this chunk uses
        used, inverse = np.unique(idx[mask], return_inverse=True)
        local = np.zeros_like(idx)
        local[mask] = inverse
        sims = img @ t[torch.from_numpy(used).to(dev)].T  # [b, U]
        logits = torch.gather(sims, 1, torch.from_numpy(local).to(dev)) * float(temperature)
        logits = logits.masked_fill(~torch.from_numpy(mask).to(dev), float("-inf"))
        probs = torch.softmax(logits, dim=-1).cpu().numpy()
        out.extend(probs[j, : len(r)].copy() for j, r in enumerate(rows))
    return out


def top_indices(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest probabilities, ties broken by the earlier prompt (deterministic)."""
    return np.argsort(-probs, kind="stable")[:k]
