"""Write examples/predictions.jsonl: one synthetic model's predictions on 2,000 synthetic images.

    python scripts/make_example.py [--images 2000] [--out examples/predictions.jsonl]

Images are named like validation files but their labels are generated (bench/synthetic.py), so
the example needs no ImageNet data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from errortaxa.engine import default_compiled  # noqa: E402
from synthetic import make_images, make_predictions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "examples" / "predictions.jsonl"))
    args = parser.parse_args()
    taxonomy = default_compiled()
    images = make_images(taxonomy, args.images, seed=7)
    pred = make_predictions(taxonomy, images, 1, seed=8)[0]
    assert images.images is not None
    with open(args.out, "w", encoding="utf-8") as out:
        for i in range(len(images)):
            record = {"image": images.images[i], "target": int(images.target[i]),
                      "labels": images.labels_of(i), "pred": int(pred[i])}
            if images.problematic[i]:
                record["problematic"] = True
            out.write(json.dumps(record) + "\n")
    print(f"wrote {len(images)} records to {args.out}")


if __name__ == "__main__":
    main()
