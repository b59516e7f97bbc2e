"""Build ``engine/errortaxa/engine/knowledge/data/real_cooccurrence.npz``: class co-occurrence counts from ReaL.

Method (Peychev et al. 2023, the spurious-correlation table; see shared REFERENCE.md step 7):
take the ReaL labels (real.json) of the validation images that are NOT in the expert multi-label
CSV, skip the images whose ReaL list is empty (no valid label), add each image's original label
(imagenet_val_labels_caffe.txt) to its ReaL set, and count, for every unordered pair of distinct
classes, the images whose set holds both. Stored sparse: ``pairs`` uint16[P, 2] (a < b, sorted),
``counts`` int32[P], ``class_counts`` int32[C], ``num_classes``, ``provenance`` (a JSON string).

Usage: python scripts/build_cooccurrence.py [--data ../shared/data] [--out PATH] [--date YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
from errortaxa.engine.inputs.formats.multilabel_csv import load_multilabel_csv
from errortaxa.engine.inputs.formats.real_json import load_real_json
from errortaxa.engine.inputs.formats.targets import load_targets
from errortaxa.engine.knowledge.cooccurrence import DEFAULT_COOCCURRENCE, load_cooccurrence

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
NUM_CLASSES = 1000

REAL = "real.json"
VAL_LABELS = "imagenet_val_labels_caffe.txt"
MULTILABEL = "imagenet2012_multilabel_validation.csv"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Sorted pairs uint16[P, 2], counts int32[P], class counts int32[C] and statistics."""
    originals = load_targets(data / VAL_LABELS, NUM_CLASSES)
    real = load_real_json(data / REAL, originals, NUM_CLASSES)
    excluded = set(load_multilabel_csv(data / MULTILABEL, NUM_CLASSES).images)
    pair_counts: Counter[tuple[int, int]] = Counter()
    class_counts = np.zeros(NUM_CLASSES, dtype=np.int32)
    used = single = 0
    for i, image in enumerate(real.images):
        if image in excluded:
            continue
        labels = sorted(set(real.labels_of(i)) | {int(real.target[i])})
        used += 1
        class_counts[labels] += 1
        if len(labels) == 1:
            single += 1
        pair_counts.update(combinations(labels, 2))
    keys = sorted(pair_counts)
    pairs = np.array(keys, dtype=np.uint16).reshape(-1, 2)
    counts = np.array([pair_counts[k] for k in keys], dtype=np.int32)
    real_excluded = sum(1 for image in real.images if image in excluded)
    stats = {
        "real_entries": len(real) + real.skipped,
        "real_without_label": real.skipped,
        "labelled_in_multilabel_set": real_excluded,
        "images_counted": used,
        "images_with_one_label": single,
        "images_with_pairs": used - single,
        "pairs": len(keys),
        "pairs_with_count_ge_2": int(np.count_nonzero(counts >= 2)),
        "max_count": int(counts.max()) if counts.size else 0,
    }
    return pairs, counts, class_counts, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the source files")
    parser.add_argument("--out", type=Path, default=DEFAULT_COOCCURRENCE)
    parser.add_argument("--date", default=dt.datetime.now(dt.timezone.utc).date().isoformat(),
                        help="build date recorded in the provenance")
    args = parser.parse_args()
    pairs, counts, class_counts, stats = build(args.data)
    provenance = {
        "table": "ImageNet-1k class co-occurrence counts from ReaL labels",
        "built": args.date,
        "script": "scripts/build_cooccurrence.py",
        "method": (
            "ReaL labels of the ImageNet validation images not in the multi-label CSV; images with an "
            "empty ReaL list skipped; each image's original label added to its ReaL set; for each "
            "unordered pair of distinct classes, the number of images whose set holds both "
            "(Peychev et al. 2023, utils.common_co_occurrences)."
        ),
        "license": "Apache-2.0 (derived from the ReaL labels)",
        "sources": [
            {"file": REAL, "sha256": sha256(args.data / REAL), "license": "Apache-2.0",
             "origin": "google-research/reassessed-imagenet, real.json (Beyer et al. 2020, "
                       "'Are we done with ImageNet?')"},
            {"file": VAL_LABELS, "sha256": sha256(args.data / VAL_LABELS),
             "origin": "ILSVRC 2012 validation ground truth, caffe-style list (original labels)"},
            {"file": MULTILABEL, "sha256": sha256(args.data / MULTILABEL),
             "origin": "TensorFlow Datasets imagenet2012_multilabel, validation split "
                       "(only its image names are used, to exclude those images)"},
        ],
        "statistics": stats,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, pairs=pairs, counts=counts, class_counts=class_counts,
        num_classes=np.int64(NUM_CLASSES), provenance=np.array(json.dumps(provenance, indent=1)),
    )
    dense = load_cooccurrence(args.out)
    assert int(dense.sum()) == 2 * int(counts.sum())
    print(json.dumps(stats))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
