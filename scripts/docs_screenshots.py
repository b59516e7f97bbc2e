"""Screenshots of the explorer for docs/EXPLORER.md (``make docs-screenshots``; not run by tests).

Generates a small demo study from examples/predictions.jsonl (a few models that differ from the
bundled predictions on a seeded subset of images, and placeholder images drawn with Pillow),
starts ``errortaxa explore`` on 127.0.0.1 and drives Debian's Chromium with Playwright, writing
docs/img/explorer_models.png, explorer_errors.png, explorer_explanation.png and
explorer_rules.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "predictions.jsonl"
CHROMIUM = "/usr/bin/chromium"
DEMO_MODELS = ("resnet50", "vit_b16", "convnext_tiny", "efficientnet_b0", "deit_small")
# the edit the rules screenshot (and the browser test) applies: co-occurrence needs 10x the support
EDIT_FROM = "{cooccurs: {table: real_val, min_count: 2}}\n              - {not: {same_superclass: true}}"
EDIT_TO = "{cooccurs: {table: real_val, min_count: 20}}\n              - {not: {same_superclass: true}}"


def write_demo_study(root: Path, models: tuple[str, ...] = DEMO_MODELS, images: int | None = None,
                     missing_every: int = 0) -> tuple[Path, Path]:
    """Prediction files (one JSONL per model) and placeholder JPEGs under ``root``.

    Model k keeps the bundled prediction of most images; on a seeded 15% it predicts the target
    (an error fixed) and on another 15% the next class id (a new, often fine-grained, error), so
    the models share some errors and not others.  Every ``missing_every``-th image has no file
    (the explorer shows a placeholder).  Answers (models folder, images folder)."""
    import numpy as np
    from PIL import Image, ImageDraw

    records = [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    if images is not None:
        records = records[:images]
    model_dir = root / "models"
    image_dir = root / "images"
    model_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(models):
        rng = np.random.default_rng(1000 + k)
        draw = rng.random(len(records))
        lines = []
        for record, u in zip(records, draw, strict=True):
            pred = record["pred"]
            if u < 0.15:
                pred = record["target"]
            elif u < 0.30:
                pred = (record["target"] + 1) % 1000
            lines.append(json.dumps({**record, "pred": int(pred)}))
        (model_dir / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for n, record in enumerate(records):
        if missing_every and n % missing_every == missing_every - 1:
            continue
        digest = hashlib.sha256(str(record["target"]).encode()).digest()
        image = Image.new("RGB", (320, 240), tuple(60 + b % 160 for b in digest[:3]))
        pen = ImageDraw.Draw(image)
        for i in range(6):
            x, y = digest[3 + 2 * i] * 320 // 256, digest[4 + 2 * i] * 240 // 256
            pen.ellipse((x - 30, y - 30, x + 30, y + 30), fill=tuple(40 + b % 200 for b in digest[i: i + 3]))
        pen.text((10, 10), f"class {record['target']}", fill=(255, 255, 255))
        image.save(image_dir / record["image"], "JPEG", quality=80)
    return model_dir, image_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def explorer(args: list[str], timeout: float = 120.0, token: str | None = None) -> Iterator[str]:
    """``errortaxa explore ARGS`` on a free port of 127.0.0.1; yields its base URL, stops it after."""
    port = free_port()
    exe = Path(sys.executable).with_name("errortaxa")
    env = {**os.environ, "ERRORTAXA_TOKEN": token} if token else {k: v for k, v in os.environ.items()
                                                                    if k != "ERRORTAXA_TOKEN"}
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(exe), "explore", *args, *(["--token"] if token else []), "--host", "127.0.0.1",
                             "--port", str(port)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"errortaxa explore exited {proc.returncode}: {log.read().decode(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{base}/", timeout=5):
                    break
            except urllib.error.HTTPError:
                break  # it answers (401 in token mode)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("errortaxa explore did not answer in time") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_ready(page: object) -> None:
    """Until the page has loaded the server's state and rendered its first view."""
    page.wait_for_selector("body[data-ready='1']")  # type: ignore[attr-defined]


def shoot(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with tempfile.TemporaryDirectory() as tmp:
        models, images = write_demo_study(Path(tmp))
        with explorer([str(models), "--images", str(images)]) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
            page.goto(f"{base}/#view=models&model=vit_b16")
            wait_ready(page)
            page.wait_for_selector("#plots svg circle")
            point = page.locator("#plots figure").nth(1).locator("circle.pt").first
            point.hover()
            written.append(out / "explorer_models.png")
            page.screenshot(path=str(written[-1]))

            page.goto(f"{base}/#view=errors&model=vit_b16&sort=models")
            page.wait_for_selector("#gallery .card img")
            page.wait_for_function("() => [...document.querySelectorAll('#gallery img')].slice(0, 12)"
                                   ".every(i => i.complete && i.naturalWidth > 0)")
            written.append(out / "explorer_errors.png")
            page.screenshot(path=str(written[-1]))

            page.locator("#gallery .card", has=page.locator(".chip", has_text="fine grained")).first.click()
            page.wait_for_selector("#modal .traces li")
            page.wait_for_function("() => document.querySelector('#modal img').complete")
            written.append(out / "explorer_explanation.png")
            page.screenshot(path=str(written[-1]))
            page.keyboard.press("Escape")

            page.goto(f"{base}/#view=rules&model=vit_b16")
            page.wait_for_selector("#yaml-code .y-key")
            area = page.locator("#yaml-input")
            text = area.input_value()
            area.fill(text.replace(EDIT_FROM, EDIT_TO))
            page.locator("#apply").click()
            page.wait_for_selector("table.matrix")
            page.wait_for_selector("#validate-state.ok")
            page.locator("#status").click()  # the "applied" message out of the picture
            line = text[: text.index(EDIT_FROM)].count("\n") + 1
            page.evaluate("line => { const a = document.querySelector('#yaml-input');"
                          " a.scrollTop = Math.max(0, (line - 12) * parseFloat(getComputedStyle(a).lineHeight));"
                          " a.dispatchEvent(new Event('scroll')); }", line)
            written.append(out / "explorer_rules.png")
            page.screenshot(path=str(written[-1]))
            browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder of the PNGs")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"docs_screenshots: error: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for path in shoot(args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
