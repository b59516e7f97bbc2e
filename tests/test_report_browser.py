"""The study report in a real browser (headless Chromium): it fits a 1400 px window, says "not
evaluated" instead of 0, has distinct headers, and notes the composition plot's subsample."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from errortaxa.engine import default_compiled
from errortaxa.study.models import ImageSet, ModelFile
from errortaxa.study.study import run_study

pytest.importorskip("matplotlib")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import make_images, make_predictions

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium; "
                                                       ".ci/run installs it)")

MEASURE = """<script>
const out = {width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, tables: []};
for (const t of document.querySelectorAll('table')) {
  const box = t.parentElement.getBoundingClientRect();
  out.tables.push({id: t.id || t.className, right: box.right, scrolls: t.parentElement.className === 'scroll'});
}
out.headers = [...document.querySelectorAll('#models th')].map(h => h.textContent);
out.notEvaluated = {};  // header -> the rows whose cell under it says "not evaluated"
for (const row of document.querySelectorAll('#models tr.model-row')) {
  [...row.children].forEach((td, i) => {
    const head = out.headers[i];
    if (td.classList.contains('not-evaluated')) out.notEvaluated[head] = (out.notEvaluated[head] || 0) + 1;
  });
}
out.captions = [...document.querySelectorAll('figcaption')].map(c => c.textContent);
document.body.setAttribute('data-measure', JSON.stringify(out));
</script></body>"""


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    return subprocess.run([BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1400,900", *args], capture_output=True, text=True, timeout=120, check=True)


def test_report_in_a_browser(tmp_path: Path) -> None:
    from errortaxa.study.report import write_report

    tax = default_compiled()
    images = make_images(tax, 400, seed=8)
    models = 90
    preds = make_predictions(tax, images, models, seed=9).astype(np.int32)
    names = [f"a-rather-long-model-name-{i:03d}-in22k-ft-in1k-384" for i in range(models)]
    meta = pd.DataFrame({"model": names, "training_data": ["ImageNet-1k (1.2M)", "ImageNet-21k (14M)"] * 45,
                         "arch_family": ["convolutional network", "transformer", "mlp"] * 30})
    result = run_study(tax, ImageSet(images), [ModelFile(n, "") for n in names], metadata=meta,
                       predictions=lambda m: preds[names.index(m.name)], progress=False)
    paths = write_report(result, tmp_path)
    page = Path(paths["report"]).read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", MEASURE, 1), encoding="utf-8")

    shot = tmp_path / "shot.png"
    _browser(f"--screenshot={shot}", probe.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = _browser("--dump-dom", probe.as_uri()).stdout
    start = dom.index("data-measure=\"") + len("data-measure=\"")
    raw = dom[start:dom.index("\"", start)]
    measure = json.loads(raw.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))

    assert measure["width"] == 1400
    assert measure["scrollWidth"] <= 1400  # the page itself never scrolls sideways
    for table in measure["tables"]:
        assert table["right"] <= 1400 and table["scrolls"], table  # wide tables scroll inside their box
    headers = measure["headers"]
    assert len(headers) == len(set(headers))  # no two columns headed "95% CI"
    assert "top-1 95% CI" in headers and "MLA share 95% CI" in headers
    # no OOV provider: the fine_grained_oov share says "not evaluated" in every row, never 0.0000, and
    # so do the MLA figures that count its minor errors correct, where the rule might change them
    # (not plain MLA: every value it counts comes before the OOV rule)
    unsure = {stat: int((result.table[f"all.{stat}_not_evaluated"] > 0).sum()) for stat in ("mla", "mla_minor")}
    assert unsure == {"mla": 0, "mla_minor": models}
    explainable = int((result.table["all.mla_explainable_not_evaluated"] > 0).sum())
    assert measure["notEvaluated"] == {"fine_grained_oov (share of errors)": models,
                                       "MLA, minor errors correct": models,
                                       **({"MLA, explainable errors correct": explainable} if explainable else {})}
    assert any("60 of 90 models shown" in c for c in measure["captions"])


SECTIONS = """<script>
const box = e => e ? e.getBoundingClientRect() : null;
const out = {width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, tables: []};
for (const t of document.querySelectorAll('table')) {
  out.tables.push({id: t.id || t.className, right: box(t.parentElement).right,
                   scrolls: t.parentElement.className === 'scroll'});
}
out.shared = [...document.querySelectorAll('table.shared-errors')].map(t => t.dataset.category);
out.sharedRows = document.querySelectorAll('table.shared-errors tr').length;
out.allWrong = document.querySelectorAll('#all-wrong tr.all-wrong').length;
out.allWrongTitle = document.querySelector('#all-wrong-title').textContent;
out.trends = [...document.querySelectorAll('table.trends')].map(t => {
  const row = t.closest('div.plot-row'), fig = box(row.querySelector('figure')), tb = box(t.parentElement);
  return {plot: t.dataset.plot, rows: t.querySelectorAll('tr.trend').length, besideFigure: tb.left >= fig.right - 1,
          sameRow: Math.abs(tb.top - fig.top) < 5};
});
out.plots = [...document.querySelectorAll('img')].map(i => ({id: i.id, loaded: i.complete && i.naturalWidth > 0}));
out.consistency = document.querySelectorAll('#consistency tr.consistency').length;
out.worstClasses = document.querySelectorAll('#worst-classes tr.worst-class').length;
out.superclasses = document.querySelectorAll('#superclasses tr.superclass').length;
out.baseline = document.querySelectorAll('#baseline tr.vs-baseline').length;
out.factorsSource = (document.querySelector('#factors-source') || {textContent: ''}).textContent;
out.headers = [...document.querySelectorAll('#models th')].map(h => h.textContent);
document.body.setAttribute('data-measure', JSON.stringify(out));
</script></body>"""


def test_report_analyses_in_a_browser(tmp_path: Path) -> None:
    """The sections of the per-image analyses: shared errors with the images every model gets wrong,
    trend fits beside their plots, the error-consistency heat map, classes, ImageNet-X factors."""
    from errortaxa.providers.imagenet_x.annotations import package_file
    from errortaxa.study.report import write_report

    tax = default_compiled()
    images = make_images(tax, 600, seed=18)
    models = 30
    preds = make_predictions(tax, images, models, seed=19).astype(np.int32)
    headline = np.flatnonzero(~images.problematic)
    for row in headline[:4]:  # images every model gets wrong
        preds[:, row] = next(c for c in range(999, 0, -1) if c not in images.labels_of(int(row)))
    names = [f"model-{i:02d}" for i in range(models)]
    factors = "imagenet_x" if package_file() is not None else None
    result = run_study(tax, ImageSet(images), [ModelFile(n, "") for n in names], progress=False,
                       predictions=lambda m: preds[names.index(m.name)], consistency=True, classes=True,
                       min_images=1, baseline=names[0], factors=factors)
    paths = write_report(result, tmp_path)
    page = Path(paths["report"]).read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", SECTIONS, 1), encoding="utf-8")
    dom = _browser("--dump-dom", probe.as_uri()).stdout
    start = dom.index("data-measure=\"") + len("data-measure=\"")
    raw = dom[start:dom.index("\"", start)]
    measure = json.loads(raw.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))

    assert measure["scrollWidth"] <= 1400
    for table in measure["tables"]:
        assert table["right"] <= 1400 and table["scrolls"], table
    assert set(measure["shared"]) <= set(result.error_categories) and measure["shared"]
    assert measure["allWrong"] == 4 and "(4)" in measure["allWrongTitle"]
    plots = {t["plot"]: t for t in measure["trends"]}
    assert set(plots) == {"error_share_vs_mla", "organism_vs_artifact"}
    for trend in plots.values():  # the fits sit beside their plot, in the same row
        assert trend["rows"] > 0 and trend["besideFigure"] and trend["sameRow"], trend
    loaded = {p["id"]: p["loaded"] for p in measure["plots"]}
    assert loaded["plot-error_consistency"] and loaded["plot-error_share_vs_mla"]
    assert measure["consistency"] == 1 + len(result.error_categories)
    assert measure["worstClasses"] > 0 and measure["superclasses"] > 0
    assert measure["baseline"] == models
    assert "MLA 95% CI (bootstrap)" in measure["headers"] and len(measure["headers"]) == len(set(measure["headers"]))
    if factors is not None:
        assert loaded["plot-factors"] and "CC BY-NC 4.0" in measure["factorsSource"]
