"""ImageNet-X: the ``imagenet_x`` provider (found by its entry point), its annotation table as the
study reads it through the registry, the study's factor shares recomputed by a direct count over
the installed package's annotation file, and the shipped example taxonomy that uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from errortaxa.engine import SampleBatch, compile_path, default_compiled, evaluate
from errortaxa.engine.providers import registry
from errortaxa.engine.providers.factory import ProviderConfigError
from errortaxa.engine.run.cases import run_cases
from errortaxa.providers.imagenet_x.annotations import FACTORS, package_file
from errortaxa.study.models import ImageSet, ModelFile
from errortaxa.study.study import run_study

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from synthetic import make_images, make_predictions  # noqa: E402

pytestmark = pytest.mark.skipif(package_file() is None, reason="the factors extra (imagenet-x) is not installed")
EXAMPLE = ROOT / "rules" / "examples" / "imagenet_x_factors.yaml"


@pytest.fixture(scope="module")
def annotations() -> dict[str, dict[str, int]]:
    """The package's multi-factor annotations, parsed here with the standard library alone."""
    path = package_file()
    assert path is not None
    out = {}
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            record = json.loads(line)
            out[record["file_name"]] = {f: int(record[f]) for f in FACTORS}
    return out


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "imagenet_x.yaml"
    path.write_text("{}\n")
    return path


def test_installed_by_its_entry_point() -> None:
    points = {p.name: p.value for p in entry_points(group="errortaxa.providers")}
    assert points["imagenet_x"] == "errortaxa.providers.imagenet_x.factory:ImagenetXFactory"
    assert "imagenet_x" in registry.names()


def test_annotation_table_through_the_registry(annotations: dict[str, dict[str, int]]) -> None:
    from errortaxa.engine.providers.annotations import annotation_table

    table = annotation_table("imagenet_x")
    assert len(table.images) == len(annotations) == 48868
    assert table.columns == list(FACTORS)
    expected = np.array([[annotations[name][f] for f in FACTORS] for name in table.images], bool)
    assert np.array_equal(table.values, expected)
    assert "CC BY-NC 4.0" in table.source
    with pytest.raises(ProviderConfigError, match="has no annotation table"):
        annotation_table("oov")


def test_provider_answers_factor(annotations: dict[str, dict[str, int]], config: Path) -> None:
    tax = default_compiled()
    provider = registry.build("imagenet_x", config, tax)
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 80)] + ["not_annotated.jpg"]
    batch = SampleBatch.from_lists(target=[0] * len(names), labels=[[0]] * len(names), pred=[1] * len(names),
                                   images=names)
    rows = np.arange(len(names))
    for factor in ("pose", "background", "smaller"):
        got = provider.evaluate("factor", {"factor": factor}, batch, rows)
        for i, name in enumerate(names):
            if name in annotations:
                assert got.known[i] and bool(got.holds[i]) == bool(annotations[name][factor])
            else:
                assert not got.known[i] and got.reason[i] == "image not annotated by ImageNet-X"
    assert sum(n not in annotations for n in names) >= 2  # the package leaves some validation images out
    with pytest.raises(ValueError, match="factor: Input should be 'pose', 'background'"):
        provider.evaluate("factor", {"factor": "posture"}, batch, rows)
    with pytest.raises(ValueError, match="extra_param: Extra inputs are not permitted"):
        provider.evaluate("factor", {"factor": "pose", "extra_param": 1}, batch, rows)
    with pytest.raises(ValueError, match="no test"):
        provider.evaluate("pose", {"factor": "pose"}, batch, rows)


def test_bad_config_names_the_option(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("annotation: x.jsonl\n")
    with pytest.raises(ProviderConfigError, match=r"--imagenet_x-config .*bad\.yaml: expected a mapping"):
        registry.build("imagenet_x", bad, default_compiled())
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"file_name": "a.JPEG", "pose": 2}\n')
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("annotations: broken.jsonl\n")
    with pytest.raises(ProviderConfigError, match="line 1: pose: expected 0 or 1, got 2"):
        registry.build("imagenet_x", cfg, default_compiled())


def test_study_factor_shares_against_a_direct_count(annotations: dict[str, dict[str, int]], tmp_path: Path) -> None:
    tax = default_compiled()
    images = make_images(tax, 700, seed=5)
    models = 4
    preds = make_predictions(tax, images, models, seed=6).astype(np.int32)
    names = [f"m{i}" for i in range(models)]
    result = run_study(tax, ImageSet(images), [ModelFile(n, "") for n in names], progress=False, resamples=0,
                       predictions=lambda m: preds[names.index(m.name)], factors="imagenet_x")
    assert result.factors is not None
    table = result.factors.table.set_index(["model", "category", "factor"])
    axis = tax.axes[tax.primary_axis]
    annotated = [i for i in range(len(images)) if not images.problematic[i] and images.images[i] in annotations]
    assert result.factors.images == len(annotated)
    for factor in FACTORS:
        base = sum(annotations[images.images[i]][factor] for i in annotated) / len(annotated)
        for m in (0, models - 1):
            value = evaluate(tax, images.take(np.arange(len(images)), preds[m])).primary.value
            for category in ("all_errors", *result.error_categories):
                errors = [i for i in annotated if not axis.mla_correct[value[i]]
                          and (category == "all_errors" or axis.values[value[i]].id == category)]
                hits = sum(annotations[images.images[i]][factor] for i in errors)
                row = table.loc[(names[m], category, factor)]
                assert row["errors"] == len(errors) and row["errors_with_factor"] == hits
                assert row["base_share"] == pytest.approx(base)
                if errors:
                    assert row["share"] == pytest.approx(hits / len(errors))
                    assert (row["ratio"] == pytest.approx(hits / len(errors) / base) if base
                            else np.isnan(row["ratio"]))
    paths = result.write(tmp_path)
    written = pd.read_csv(paths["factors"])
    assert list(written.columns) == ["model", "category", "factor", "errors", "errors_with_factor", "share",
                                     "base_share", "ratio"]


def test_study_reads_the_annotations_without_importing_the_provider() -> None:
    code = (
        "import sys; sys.path.insert(0, 'bench')\n"
        "import numpy as np\n"
        "from errortaxa.engine import default_compiled\n"
        "from errortaxa.study.models import ImageSet, ModelFile\n"
        "from errortaxa.study.study import run_study\n"
        "from synthetic import make_images, make_predictions\n"
        "tax = default_compiled(); images = make_images(tax, 100, seed=1)\n"
        "p = make_predictions(tax, images, 2, seed=2).astype(np.int32)\n"
        "r = run_study(tax, ImageSet(images), [ModelFile('a', ''), ModelFile('b', '')], progress=False, resamples=0,\n"
        "              predictions=lambda m: p['ab'.index(m.name)], factors='imagenet_x')\n"
        "assert r.factors is not None and len(r.factors.table)\n"
        "print(sorted(m for m in sys.modules if m.startswith('errortaxa.providers.imagenet_x')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=True).stdout
    # the registry loads the factory (its entry point); the provider module itself is never imported
    assert "errortaxa.providers.imagenet_x.provider" not in out and "factory" in out


def test_example_taxonomy_with_the_provider(annotations: dict[str, dict[str, int]], config: Path) -> None:
    tax = compile_path(EXAMPLE)
    assert "imagenet_x" in tax.providers_needed
    provider = registry.build("imagenet_x", config, tax)
    assert all(r.passed for r in run_cases(tax, {"imagenet_x": provider}))
    assert all(r.passed for r in run_cases(tax))  # its cases hold without the provider too
    # mistakes (a dog predicted as a sports car) on annotated images: the first factor in rule order
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 60)]
    dog, car = tax.class_ref("golden_retriever.n.01"), tax.class_ref("sports_car.n.01")
    batch = SampleBatch.from_lists(target=[dog] * len(names), labels=[[dog]] * len(names), pred=[car] * len(names),
                                   images=names)
    got = evaluate(tax, batch, {"imagenet_x": provider}).axes["factor"]
    order = [("pose",), ("partial_view",), ("object_blocking", "person_blocking"), ("smaller",),
             ("multiple_objects",), ("background",)]
    for i, name in enumerate(names):
        expected = "no_factor"
        if name in annotations:
            expected = next((fs[0] for fs in order if any(annotations[name][f] for f in fs)), "no_factor")
        assert got.values[got.value[i]] == expected, name


def test_rules_test_checks_annotated_cases_with_the_provider_option(annotations: dict[str, dict[str, int]],
                                                                   config: Path, tmp_path: Path) -> None:
    """`rules test --imagenet_x-config`: a case on an annotated image is checked (PASS / FAIL), not
    left open as without the option."""
    image = next(n for n, fs in sorted(annotations.items()) if fs["pose"])  # the first rule's factor
    expect = {"a": "pose", "b": "background"}
    sample = f"{{target: 207, labels: [207], pred: 817, image: {image}}}"  # a golden retriever as a sports car
    cases = "".join(f"  - name: case {k}\n    sample: {sample}\n    expect: {{factor: {v}}}\n"
                    for k, v in expect.items())
    taxonomy = tmp_path / "mine.yaml"
    taxonomy.write_text(f"schema: errortaxa/v1\nextends: {EXAMPLE}\nname: mine\nversion: '1'\ncases:\n{cases}")
    exe = str(Path(sys.executable).with_name("errortaxa"))

    def rules_test(*options: str) -> tuple[int, dict[str, str]]:
        done = subprocess.run([exe, "rules", "test", str(taxonomy), "--format", "json", *options],
                              capture_output=True, text=True, timeout=300)
        assert done.stderr == "", done.stderr
        return done.returncode, {c["name"]: c["status"] for c in json.loads(done.stdout)["cases"]}

    assert rules_test() == (0, {"case a": "skipped", "case b": "skipped"})
    assert rules_test("--imagenet_x-config", str(config)) == (1, {"case a": "passed", "case b": "failed"})
    done = subprocess.run([exe, "rules", "test", str(taxonomy), "--imagenet_x-config", str(tmp_path / "none.yaml")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--imagenet_x-config" in done.stderr and "Traceback" not in done.stderr


def test_the_compiler_checks_the_declared_parameters(tmp_path: Path) -> None:
    from errortaxa.engine.errors import ErrorTaxaError

    text = EXAMPLE.read_text(encoding="utf-8").replace("../imagenet/peychev2023.yaml",
                                                       str(ROOT / "rules" / "imagenet" / "peychev2023.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("params: {factor: pose}", "params: {factor: posture}"), encoding="utf-8")
    with pytest.raises(ErrorTaxaError, match="factor"):
        compile_path(bad, providers=registry.declarations())
    good = tmp_path / "good.yaml"
    good.write_text(text, encoding="utf-8")
    assert "imagenet_x" in compile_path(good, providers=registry.declarations()).providers_needed
