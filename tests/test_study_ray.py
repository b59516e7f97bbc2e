"""A study on a small local Ray instance (usage statistics off, no dashboard) equals the single-process run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray")

from errortaxa.engine import compile_path, default_compiled
from errortaxa.study.models import ImageSet, discover_models
from errortaxa.study.study import run_study

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import make_images, make_predictions

ROOT = Path(__file__).resolve().parents[1]


def test_ray_local_equals_single_process(tmp_path: Path, ray_local: Any) -> None:
    tax = default_compiled()
    images = make_images(tax, 400, seed=7)
    preds = make_predictions(tax, images, 7, seed=8)
    for m, p in enumerate(preds):
        np.savez(tmp_path / f"m{m}.npz", top1=p, images=np.array(images.images))
    models = discover_models([tmp_path])
    other = compile_path(ROOT / "rules" / "imagenet" / "vasudevan2022_severity.yaml")
    single = run_study(tax, ImageSet(images), models, progress=False, compare=other, compare_axis="severity")
    distributed = run_study(tax, ImageSet(images), models, progress=False, ray_address="local", chunks=3,
                            compare=other, compare_axis="severity")
    assert ray_local.is_initialized()  # the shared instance stays up for the other Ray tests
    assert list(distributed.table["model"]) == [f"m{m}" for m in range(7)]
    assert distributed.table.equals(single.table)
    assert distributed.top_errors == single.top_errors
    assert single.diff is not None and distributed.diff is not None and single.diff.samples > 0
    assert distributed.diff.to_dict() == single.diff.to_dict()
