"""The study of ``make explore-demo``: a few generated models on the bundled example
(examples/predictions.jsonl) and a placeholder JPEG per image (every 11th left out, to show the
explorer's placeholder), written by the same generator as the explorer's screenshots and browser
test (scripts/docs_screenshots.py: ``write_demo_study``).

    python scripts/make_demo_images.py OUT_DIR      # writes OUT_DIR/models/*.jsonl, OUT_DIR/images/*.JPEG
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_screenshots import write_demo_study


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder")
    args = parser.parse_args()
    models, images = write_demo_study(args.out, missing_every=11)
    print(f"models: {models}\nimages: {images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
