"""The README's example row: one generated model through `errortaxa study --reference-tables`.

Generates a model's top-1 on all 50,000 validation images (synthetic: accuracy drawn in [0.65, 0.9], its errors
mostly on each image's confusable classes, bench/synthetic.py) and runs the study on the expert
multi-labels with the original labels for top-1. Needs the public data directory (ARG 1, e.g.
../shared/data); writes OUT (ARG 2) and prints the 'all' row.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import make_predictions


def main(data: Path, out: Path) -> None:
    from errortaxa.cli import main as cli
    from errortaxa.engine import SampleBatch, default_compiled
    from errortaxa.engine.inputs import read_labels

    tax = default_compiled()
    val = read_labels(data / "imagenet_val_labels_caffe.txt")
    images = SampleBatch.from_arrays(target=val.target, pred=val.target, label_offsets=val.label_offsets,
                                     label_values=val.label_values, problematic=val.problematic, images=val.images)
    pred = make_predictions(tax, images, 1, seed=2023)[0].astype(np.int32)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    np.savez(models / "generated-model.npz", top1=pred)  # rows: the 50,000 validation images in order
    code = cli(["study", str(models), "--labels", str(data / "imagenet2012_multilabel_validation.csv"),
                "--val-labels", str(data / "imagenet_val_labels_caffe.txt"), "--reference-tables",
                "--out", str(out), "--no-progress"])
    print((out / "reference" / "non_problematic_stats_all.csv").read_text())
    sys.exit(code)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
