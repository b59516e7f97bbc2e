"""A study's inputs: the models' prediction files, the image set, metadata and image lists."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from errortaxa.engine import SampleBatch
from errortaxa.engine.inputs import (
    NUM_VALIDATION_IMAGES,
    PREDICTIONS,
    InputError,
    LabeledImages,
    ReadOptions,
    read_predictions,
    recognised,
    suffixes,
)

PathLike = str | os.PathLike[str]
_VAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$")


@dataclass(frozen=True)
class ModelFile:
    """One model's prediction file; ``name`` is the file name without its suffix."""

    name: str
    path: str


def discover_models(sources: Sequence[PathLike]) -> list[ModelFile]:
    """Prediction files from directories (those with the suffix of a predictions format, e.g.
    ``*.npz`` / ``*.npy`` / ``*.jsonl`` / ``*.csv``, whose content a predictions format recognises,
    sorted by name: a metadata CSV beside them is left out), plain files, and ``.txt`` lists of
    paths (one a line, relative to the list's folder). A ``.txt`` file is read by its content: a
    list of model files when its first entry names an existing file or a file with a predictions
    suffix, else one model's predictions (one class id or name a line)."""
    known = suffixes(PREDICTIONS)
    out: list[ModelFile] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir()
                           if p.name.lower().endswith(known) and p.is_file() and recognised(p, PREDICTIONS))
        elif path.suffix.lower() == ".txt" and (listed := _listed_files(path)) is not None:
            files = listed
        elif path.is_file():
            files = [path]
        else:
            raise InputError(path, "no such file or directory")
        out.extend(ModelFile(_model_name(p), str(p)) for p in files)
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(sources[0] if sources else ".", f"two prediction files for model {dup!r}")
    return out


def _listed_files(path: Path) -> list[Path] | None:
    """The files a ``.txt`` list names (relative to its folder); None when it is not a list of
    files (its first entry neither names an existing file nor has a predictions suffix)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read: {getattr(error, 'strerror', None) or error}") from None
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not entries:
        return []
    first = path.parent / entries[0]
    if not (first.is_file() or entries[0].lower().endswith(suffixes(PREDICTIONS))):
        return None
    return [path.parent / entry for entry in entries]


def _model_name(path: Path) -> str:
    name = path.name
    for suffix in suffixes(PREDICTIONS):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@dataclass
class ImageSet:
    """The study's images (a batch whose ``pred`` is ignored) and lookups into it."""

    batch: SampleBatch
    val_rows: np.ndarray = field(init=False)  # int64[50000]: study row of validation image i, -1 if none
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        names = self.batch.images or []
        self.index = {name: i for i, name in enumerate(names)}
        self.val_rows = np.full(NUM_VALIDATION_IMAGES, -1, np.int64)
        for i, name in enumerate(names):
            m = _VAL_NAME.match(name)
            if m and 1 <= int(m.group(1)) <= NUM_VALIDATION_IMAGES:
                self.val_rows[int(m.group(1)) - 1] = i

    @classmethod
    def from_labels(cls, labels: LabeledImages) -> ImageSet:
        return cls(labels.to_batch(labels.target))

    def __len__(self) -> int:
        return len(self.batch)

    def rows_of(self, names: Iterable[str]) -> np.ndarray:
        get = self.index.get
        return np.fromiter((get(n, -1) for n in names), dtype=np.int64)


def read_model(path: PathLike, images: ImageSet, options: ReadOptions | None = None) -> np.ndarray:
    """A model's top-1 prediction on every study image (int32[N], -1 where the file has none),
    from a file in any predictions format."""
    out = np.full(len(images), -1, np.int32)
    options = options or ReadOptions()
    num_classes = options.num_classes
    predictions = read_predictions(path, options)
    if predictions.images is None:
        raise InputError(path, f"{predictions.format} predictions need image names to join with the study images")
    rows = images.val_rows if predictions.validation_order else images.rows_of(predictions.images)
    keep = np.flatnonzero(rows >= 0)
    out[rows[keep]] = predictions.top1(num_classes, keep)
    return out


def read_metadata(path: PathLike) -> pd.DataFrame:
    """Model metadata CSV; the model column is ``name`` (or ``model``, else the first column)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, csv.Error) as error:
        raise InputError(path, f"cannot read as CSV: {error}") from None
    if frame.empty and not len(frame.columns):
        raise InputError(path, "empty CSV")
    key = "name" if "name" in frame.columns else "model" if "model" in frame.columns else frame.columns[0]
    frame = frame.rename(columns={key: "model"})
    frame["model"] = frame["model"].astype(str)
    if frame["model"].duplicated().any():
        dup = frame.loc[frame["model"].duplicated(), "model"].iloc[0]
        raise InputError(path, f"model {dup!r} appears twice", field="name")
    return frame


def read_image_list(path: PathLike) -> list[str]:
    """An image list (e.g. ImageNet-M): one file name a line, or a CSV/JSON whose first field is one;
    bare 8-digit numbers or ``ILSVRC2012_val_00000001`` without a suffix are accepted."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from None
    out: list[str] = []
    if text.lstrip().startswith("[") or text.lstrip().startswith("{"):
        import json

        data = json.loads(text)
        items = list(data) if isinstance(data, dict | list) else []
        lines = [str(x) for x in items]
    else:
        lines = [line.split(",")[0].strip().strip('"') for line in text.splitlines()]
    for token in lines:
        if not token or token.startswith("#") or token.lower() in {"file", "image", "id", "name"}:
            continue
        token = Path(token).name
        if token.isdigit():
            token = f"ILSVRC2012_val_{int(token):08d}.JPEG"
        elif token.startswith("ILSVRC2012_val_") and not token.endswith(".JPEG"):
            token += ".JPEG"
        out.append(token)
    return out
