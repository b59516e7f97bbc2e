"""The study report renders: the HTML holds the table rows, plots and category names; PNGs are real."""

from __future__ import annotations

import base64
import io
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from errortaxa.engine import default_compiled
from errortaxa.study.models import ImageSet, ModelFile
from errortaxa.study.study import run_study

pytest.importorskip("matplotlib")
import matplotlib.image as mpimg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import make_images, make_predictions


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.in_row = False
        self.cell: list[str] | None = None
        self.h3: list[str] = []
        self.in_h3 = False
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("class") == "model-row":
            self.in_row = True
            self.rows.append([])
        elif tag == "td" and self.in_row:
            self.cell = []
        elif tag == "h3" and a.get("class") == "category":  # the most common errors' categories
            self.in_h3 = True
        elif tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self.in_row = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None
        elif tag == "h3":
            self.in_h3 = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)
        if self.in_h3:
            self.h3.append(data)


def test_report_renders(tmp_path: Path) -> None:
    from errortaxa.study.report import write_report

    tax = default_compiled()
    images = make_images(tax, 800, seed=5)
    preds = make_predictions(tax, images, 12, seed=6).astype(np.int32)
    meta = pd.DataFrame({"model": [f"m{i:02d}" for i in range(12)], "family": ["cnn", "vit", "mlp"] * 4})
    result = run_study(tax, ImageSet(images), [ModelFile(f"m{i:02d}", "") for i in range(12)],
                       metadata=meta, predictions=lambda m: preds[int(m.name[1:])], progress=False)
    paths = write_report(result, tmp_path)
    for name in ("error_share_vs_mla", "composition", "organism_vs_artifact"):
        png = mpimg.imread(paths[f"{name}.png"])
        assert png.ndim == 3 and png.shape[0] > 200 and png.shape[1] > 300
        assert float(png[..., :3].std()) > 0.02  # not blank
        svg = Path(paths[f"{name}.svg"]).read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    page = Path(paths["report"]).read_text()
    parser = _Collect()
    parser.feed(page)
    # one row per model, sorted by accuracy, with the metadata and the accuracy from the table
    assert len(parser.rows) == 12
    by_model = {r[0]: r for r in parser.rows}
    assert set(by_model) == set(meta["model"])
    best = result.table.sort_values("all.mla", ascending=False).iloc[0]
    assert parser.rows[0][0] == best["model"] and parser.rows[0][1] == best["family"]
    assert float(parser.rows[0][5]) == pytest.approx(best["all.mla"], abs=1e-4)
    assert parser.rows[0][6] == f"[{best['all.mla_lo']:.4f}, {best['all.mla_hi']:.4f}]"  # bootstrap interval
    assert float(parser.rows[0][7]) == pytest.approx(best["all.mla_share"], abs=1e-4)
    assert "imagenet-mistakes" in page  # the sample list and its source
    # the most common errors per category, under the category's name, with class names
    assert parser.h3 and set(parser.h3) <= set(result.categories)
    for cat, entries in result.top_errors.items():
        assert cat in parser.h3
        assert entries[0]["pred_name"] in page
    # the plots are embedded PNGs that decode
    assert len(parser.images) == 3
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        img = mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert img.shape[0] > 200
