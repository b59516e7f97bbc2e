"""The explorer's page in a real browser: Playwright driving Debian's Chromium against a real
``errortaxa explore`` on 127.0.0.1 over a small generated study (five models on the bundled
example, placeholder JPEGs).  Every test also asserts that the page logged no console error and
raised no exception."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from docs_screenshots import DEMO_MODELS, EDIT_FROM, EDIT_TO, ROOT, explorer, wait_ready, write_demo_study

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("PIL", reason="Pillow (the explore extra) is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium; "
                                                                ".ci/run installs it)")

expect = sync_api.expect
TAXONOMY = ROOT / "rules" / "imagenet" / "peychev2023.yaml"
TOKEN = "s3cret-token-for-the-test"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("explore-study")
    models, images = write_demo_study(root, images=600, missing_every=7)
    taxonomy = root / "taxonomy.yaml"
    taxonomy.write_text(TAXONOMY.read_text(encoding="utf-8"), encoding="utf-8")
    (root / "non_prototypical.txt").write_text((TAXONOMY.parent / "non_prototypical.txt").read_text(encoding="utf-8"),
                                               encoding="utf-8")
    metadata = root / "metadata.csv"
    metadata.write_text("model,arch_family\n" + "".join(f"{m},{'transformer' if 'vi' in m or 'deit' in m else 'cnn'}\n"
                                                         for m in DEMO_MODELS), encoding="utf-8")
    return {"models": models, "images": images, "taxonomy": taxonomy, "notes": root / "notes.jsonl",
            "metadata": metadata}


@pytest.fixture(scope="module")
def server(study: dict[str, Path]) -> Iterator[str]:
    with explorer([str(study["models"]), "--images", str(study["images"]), "--taxonomy", str(study["taxonomy"]),
                   "--notes", str(study["notes"]), "--metadata", str(study["metadata"])]) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


class Console:
    """The console errors and uncaught exceptions of the pages of one test."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        return page


@pytest.fixture
def console() -> Iterator[Console]:
    watcher = Console()
    yield watcher
    assert watcher.errors == []


def open_page(browser: Any, console: Console, url: str) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = console.watch(context.new_page())
    page.set_default_timeout(30_000)
    page.goto(url)
    wait_ready(page)
    return page


def hash_state(page: Any) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(page.url).fragment))


def total(page: Any) -> int:
    expect(page.locator("#gallery")).not_to_have_class(re.compile("loading"))
    text = page.locator("#error-total").inner_text()
    return int(text.split()[0])


def test_models_view_selects_by_row_and_point(browser: Any, server: str, console: Console) -> None:
    page = open_page(browser, console, server)
    rows = page.locator("#model-table tbody tr")
    expect(rows).to_have_count(len(DEMO_MODELS))
    headers = page.locator("#model-table thead th").all_inner_texts()
    assert headers[:3] == ["model", "top-1", "MLA [95% CI]"]
    assert any("fine grained" in h for h in headers)
    assert headers[-1] == "arch_family"  # the --metadata columns come last
    expect(page.locator("#model-table tbody tr[data-model='vit_b16'] td.extra")).to_have_text("transformer")
    expect(page.locator("#tx-name")).to_have_text("peychev2023")
    expect(page.locator("#cmd-models .cmd-text")).to_contain_text("errortaxa")

    # sorting by top-1 (descending, then ascending) orders the rows by their numbers
    page.locator("#model-table thead th", has_text="top-1").click()
    values = [float(v) for v in page.locator("#model-table tbody td:nth-child(2)").all_inner_texts()]
    assert values == sorted(values, reverse=True)
    page.locator("#model-table thead th", has_text="top-1").click()
    values = [float(v) for v in page.locator("#model-table tbody td:nth-child(2)").all_inner_texts()]
    assert values == sorted(values)

    # a row selects its model everywhere: row, header select, URL, the plots' highlighted point
    page.locator("#model-table tbody tr[data-model='convnext_tiny']").click()
    expect(page.locator("#model-table tbody tr.selected")).to_have_attribute("data-model", "convnext_tiny")
    expect(page.locator("#model-select")).to_have_value("convnext_tiny")
    assert hash_state(page)["model"] == "convnext_tiny"
    page.wait_for_selector("#plots circle.pt")
    plots = page.locator("#plots figure").count()
    assert plots >= 1
    expect(page.locator("#plots circle.pt.sel")).to_have_count(plots)
    selected = page.locator("#plots circle.pt.sel").evaluate_all("cs => cs.map(c => c.dataset.model)")
    assert set(selected) == {"convnext_tiny"}
    assert page.locator("#plots figure").first.locator("circle.pt").count() == len(DEMO_MODELS)

    # hovering a point names its model; clicking it selects that model
    point = page.locator("#plots figure").first.locator("circle.pt[data-model='deit_small']")
    point.hover()
    expect(page.locator("#tooltip")).to_be_visible()
    expect(page.locator("#tooltip")).to_contain_text("deit_small")
    point.click()
    expect(page.locator("#model-table tbody tr.selected")).to_have_attribute("data-model", "deit_small")
    expect(page.locator("#model-select")).to_have_value("deit_small")
    assert hash_state(page)["model"] == "deit_small"


def test_gallery_filters_explanation_notes_and_export(browser: Any, server: str, study: dict[str, Path],
                                                      console: Console) -> None:
    page = open_page(browser, console, f"{server}/#view=errors")
    everything = total(page)
    assert everything > 60
    expect(page.locator("#gallery .card")).to_have_count(60)
    badges = [int(b.split()[0]) for b in page.locator("#gallery .badge").all_inner_texts()]
    assert badges == sorted(badges, reverse=True) and badges[0] > 1  # most models first; shared errors exist
    expect(page.locator("#cmd-errors .cmd-text")).to_contain_text("errortaxa")
    page.locator("#pager-top button", has_text="next").click()
    expect(page.locator("#pager-top .range")).to_contain_text("61–")
    assert hash_state(page)["offset"] == "60"

    # one model, then one category: every card is of that category; the filters go to the URL
    page.locator("#f-model").select_option("vit_b16")
    model_total = total(page)
    assert 0 < model_total < everything
    assert "offset" not in hash_state(page)  # a filter returns to the first page
    page.locator("#f-category").select_option("fine_grained")
    fine = total(page)
    assert 0 < fine < model_total
    assert set(page.locator("#gallery .chip").all_inner_texts()) == {"fine grained"}
    assert hash_state(page)["category"] == "fine_grained"

    # made by at least N models
    page.locator("#f-min-models").fill("3")
    page.locator("#f-min-models").press("Enter")
    shared = total(page)
    assert shared < fine
    badges = [int(b.split()[0]) for b in page.locator("#gallery .badge").all_inner_texts()]
    assert badges and min(badges) >= 3

    # the export link carries the same filters and answers the same number of rows
    href = page.locator("#export-jsonl").get_attribute("href")
    assert "min_models=3" in href and "category=fine_grained" in href and "model=vit_b16" in href
    lines = page.request.get(server + href).text().strip().splitlines()
    assert len(lines) == shared

    # the explanation: large image, every rule in order (the deciding one held), the models
    card = page.locator("#gallery .card").first
    image = card.get_attribute("data-image")
    count = int(card.locator(".badge").inner_text().split()[0])
    rule = card.locator(".card-foot").inner_text().split(" · ")[0].removeprefix("rule ")
    card.click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    expect(modal.locator(".traces li").first).to_be_visible()
    assert hash_state(page)["open"] == image
    held = modal.locator(".trace.held .rule-id").all_inner_texts()
    assert held[0] == rule
    first_rules = modal.locator(".trace .rule-id").all_inner_texts()
    assert first_rules[0] == "correct"  # every rule from the first one, in precedence order
    expect(modal.locator(".trace.failed").first).to_be_visible()
    expect(modal.locator(".model-list li")).to_have_count(count)
    page.wait_for_function("() => document.querySelector('#modal .modal-image img').naturalWidth > 0")

    # a review note goes to the --notes file
    modal.locator("#note-text").fill("two objects")
    modal.locator("#note-label").click()
    expect(modal.locator(".notes [role=status]")).to_contain_text("saved")
    notes = [json.loads(line) for line in study["notes"].read_text(encoding="utf-8").splitlines()]
    assert notes[-1]["image"] == image and notes[-1]["kind"] == "label_problem" and notes[-1]["note"] == "two objects"
    expect(modal.locator(".note-list li")).to_have_count(1)

    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    # the dialog's 'close' event, which updates the URL, fires after it is hidden
    page.wait_for_function("() => !new URLSearchParams(location.hash.slice(1)).has('open')")
    assert "open" not in hash_state(page)

    # thumbnails load; an image without a file (every 7th here) gets the placeholder, not an error
    missing = "ILSVRC2012_val_00000007.JPEG"  # the example's 7th image
    assert not (study["images"] / missing).exists()
    placeholder = page.request.get(f"{server}/thumb/{missing}")
    assert placeholder.ok and placeholder.headers["content-type"].startswith("image/")
    page.locator("#clear-filters").click()
    total(page)
    page.wait_for_function("() => [...document.querySelectorAll('#gallery img')].slice(0, 8)"
                           ".every(i => i.complete && i.naturalWidth > 0)")


def test_compare_two_checkpoints(browser: Any, server: str, console: Console) -> None:
    page = open_page(browser, console, f"{server}/#view=compare&a=resnet50&b=vit_b16")
    stat = page.locator(".stat.introduced")
    expect(stat).to_be_visible()
    introduced = int(stat.locator(".stat-n").inner_text())
    assert introduced > 0
    expect(page.locator(".mcnemar")).to_contain_text("McNemar")
    expect(page.locator("#cmd-compare .cmd-text")).to_contain_text("errortaxa mcnemar")
    stat.locator("button").click()
    assert total(page) == introduced
    assert hash_state(page)["compare"] == "introduced"


def _apply_edit(page: Any) -> str:
    area = page.locator("#yaml-input")
    text = area.input_value()
    assert EDIT_FROM in text
    edited = text.replace(EDIT_FROM, EDIT_TO)
    area.fill(edited)
    page.locator("#apply").click()
    expect(page.locator("table.matrix").first).to_be_visible()
    return edited


def test_rule_edit_opens_the_moved_errors_and_the_link_reproduces_the_view(browser: Any, server: str,
                                                                         console: Console) -> None:
    page = open_page(browser, console, f"{server}/#view=models&model=vit_b16")
    expect(page.locator("#model-table tbody tr.selected td").first).to_be_visible()
    before = page.locator("#model-table tbody tr[data-model='vit_b16'] td").all_inner_texts()
    page.locator("#tab-rules").click()
    expect(page.locator("#yaml-code .y-key").first).to_be_visible()  # highlighted
    edited = _apply_edit(page)
    expect(page.locator("#tx-state")).to_be_visible()
    expect(page.locator("#cmd-rules .cmd-text")).to_contain_text("errortaxa")
    expect(page.locator("#save")).to_be_hidden()  # started without --allow-save
    download = page.request.get(server + page.locator("#download").get_attribute("href"))
    assert download.ok and download.text() == edited
    cases = page.locator("#case-list li")
    assert cases.count() > 5
    assert page.locator("#case-list li.passed").count() + page.locator("#case-list li.failed").count() == cases.count()

    # the selected model's matrix: the cell of the moved errors opens exactly them
    cell = page.locator("table.matrix[data-scope='model'] button.cell[data-from='spurious_correlation']").first
    moved_to = cell.get_attribute("data-to")
    moved = int(cell.inner_text())
    assert moved > 0
    cell.click()
    expect(page.locator("#view-errors")).to_be_visible()
    assert total(page) == moved
    assert set(page.locator("#gallery .chip").all_inner_texts()) == {moved_to.replace("_", " ")}
    expect(page.locator("#active-filters")).to_contain_text("spurious_correlation")
    state = hash_state(page)
    assert state["from_category"] == "spurious_correlation" and state["category"] == moved_to and "y" in state

    # the table moved with the edit, its columns all there (MLA per class and metadata follow the apply)
    page.locator("#tab-models").click()
    expect(page.locator("#model-table tbody tr[data-model='vit_b16'] td").nth(2)).not_to_have_text("–")
    after = page.locator("#model-table tbody tr[data-model='vit_b16'] td").all_inner_texts()
    assert after != before and len(after) == len(before) and after[-1] == "transformer"

    # open one moved error, then the link in a fresh browser context reproduces the whole view
    page.locator("#tab-errors").click()
    page.locator("#gallery .card").first.click()
    expect(page.locator("#modal .traces li").first).to_be_visible()
    image = hash_state(page)["open"]
    link = page.url
    fresh = open_page(browser, console, link)
    expect(fresh.locator("#modal")).to_be_visible()
    expect(fresh.locator("#modal .facts")).to_contain_text(image)
    assert fresh.locator("#yaml-input").input_value() == edited
    assert total(fresh) == moved
    expect(fresh.locator("#f-model")).to_have_value("vit_b16")
    expect(fresh.locator("#tx-state")).to_be_visible()


def test_mla_an_unevaluated_rule_might_change_says_so(browser: Any, server: str, console: Console) -> None:
    page = open_page(browser, console, f"{server}/#view=rules")
    area = page.locator("#yaml-input")
    text = area.input_value()
    # a rule giving an MLA-correct value from a sample list that is not there: never evaluated
    rule = "      - id: model_failure\n        description: Step 9.\n"
    assert "resources:\n" in text and text.count(rule) == 1
    text = text.replace("resources:\n", "resources:\n  absent: {kind: sample_list, file: absent.txt, optional: true, "
                                         "source: nowhere}\n", 1)
    area.fill(text.replace(rule, "      - id: absent\n        when: {in_sample_list: absent}\n"
                                 "        then: multi_label\n" + rule))
    page.locator("#apply").click()
    expect(page.locator("table.matrix").first).to_be_visible()
    page.locator("#tab-models").click()
    mla = page.locator("#model-table tbody tr td:nth-of-type(2)")
    expect(mla).to_have_count(len(DEMO_MODELS))
    assert set(mla.all_inner_texts()) == {"not evaluated"}
    assert all(re.fullmatch(r"a rule not evaluated on \d+ samples might change it", t or "")
               for t in mla.evaluate_all("cells => cells.map(c => c.title)"))
    expect(page.locator("#model-table tbody tr td:nth-of-type(1)").first).not_to_have_text("not evaluated")


def test_a_forgotten_edit_is_sent_again(browser: Any, server: str, console: Console) -> None:
    page = open_page(browser, console, f"{server}/#view=rules&model=resnet50")
    _apply_edit(page)
    page.locator("table.matrix[data-scope='all'] button.cell").first.click()
    moved = total(page)
    # other edits push this one out of the server's bounded cache of compiled taxonomies
    text = page.locator("#yaml-input").input_value()
    for count in range(30, 40):
        other = text.replace("min_count: 20}", f"min_count: {count}}}")
        answer = page.request.post(f"{server}/api/taxonomy", data=other, headers={"Content-Type": "text/yaml"})
        assert answer.ok and answer.json()["ok"]
    forgotten = console.errors.copy()
    page.locator("#f-sort").select_option("image")  # asks with the forgotten tx: 404, the page re-posts its YAML
    assert total(page) == moved
    expect(page.locator("#status")).not_to_have_class(re.compile("error"))
    refused = console.errors[len(forgotten):]
    assert refused and all("404" in e for e in refused)  # the one refused request, then nothing else
    console.errors[len(forgotten):] = []

    # back to the loaded taxonomy: the link loses its YAML, the gallery its edited filter's answer
    page.locator("#tab-rules").click()
    page.locator("#reset").click()
    expect(page.locator("#tx-state")).to_be_hidden()
    expect(page.locator("table.matrix")).to_have_count(0)
    assert page.locator("#yaml-input").input_value() == text.replace("min_count: 20}", "min_count: 2}")
    assert "y" not in hash_state(page) and "from_category" not in hash_state(page)


def test_bad_edit_shows_its_line(browser: Any, server: str, console: Console) -> None:
    page = open_page(browser, console, f"{server}/#view=rules")
    area = page.locator("#yaml-input")
    text = area.input_value()
    target = "        then: spurious_correlation\n"
    line = text[: text.index(target)].count("\n") + 1
    area.fill(text.replace(target, "        then: no_such_category\n"))
    marker = page.locator("#yaml-gutter .gl.bad")
    expect(marker.first).to_be_visible()
    assert str(line) in marker.all_inner_texts()[0]
    expect(page.locator("#problems li.bad").first).to_contain_text(f"line {line}")
    expect(page.locator("#problems")).to_contain_text("no_such_category")
    expect(page.locator("#yaml-code .y-line.bad")).to_have_count(1)
    expect(page.locator("#validate-state")).to_have_class(re.compile("bad"))
    # Apply refuses it in place, nothing changes
    page.locator("#apply").click()
    expect(page.locator("#status")).to_contain_text("problems")
    expect(page.locator("table.matrix")).to_have_count(0)
    # fixing it clears the marks
    area.fill(text)
    expect(page.locator("#yaml-gutter .gl.bad")).to_have_count(0)
    expect(page.locator("#validate-state")).to_have_class(re.compile("ok"))


def test_token_mode(browser: Any, study: dict[str, Path], console: Console) -> None:
    with explorer([str(study["models"]), "--images", str(study["images"])], token=TOKEN) as base:
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        rejected: list[str] = []
        refused = re.compile("status of 40[13]")  # the answers before the token, and the wrong token's
        page.on("console", lambda msg: (rejected if refused.search(msg.text) else console.errors).append(msg.text)
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: console.errors.append(f"pageerror: {exc}"))
        page.goto(f"{base}/#view=errors&model=resnet50")
        expect(page.locator("#login")).to_be_visible()
        page.locator("#login-token").fill("wrong")
        page.locator("#login-form button").click()
        expect(page.locator("#login-error")).to_contain_text("not accepted")
        page.locator("#login-token").fill(TOKEN)
        page.locator("#login-form button").click()
        wait_ready(page)
        expect(page.locator("#login")).to_be_hidden()
        assert total(page) > 0
        page.wait_for_function("() => [...document.querySelectorAll('#gallery img')].slice(0, 4)"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        assert TOKEN not in page.url
        cookies = context.cookies()
        assert cookies and all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)
        assert rejected  # the first answers were 401: that is how the page learnt it needs the token
        context.close()
