"""Built-in dataset definitions: image sets whose labels follow from the image names.

* ``imagenet-a`` (Hendrycks et al. 2021): 7,500 images of 200 of the 1000 classes, named
  ``WNID/FILE.jpg``; the labels are the target (the class of the folder). The 200 classes ship as
  ``data/imagenet_a_classes.txt`` (hendrycks/natural-adv-examples, MIT; ``data/IMAGENET_A_LICENSE``).
* ``imagenet-v2`` (Recht et al. 2019): 10,000 images in folders named by class index,
  ``INDEX/FILE.jpeg``; the labels are the target.

Names may carry leading folders (``imagenet-a/n01498041/x.jpg``): the last two parts count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
from errortaxa.engine.inputs import InputError, LabeledImages
from errortaxa.engine.knowledge.vocabulary import Vocabulary

DATA = Path(__file__).resolve().parent / "data"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


@dataclass(frozen=True)
class DatasetDefinition:
    """How a dataset names its images and which classes it uses."""

    name: str
    description: str
    folder: str  # what the folder of an image names: "wnid" or "index"
    classes: np.ndarray | None  # int[K]: the dataset's class subset (ImageNet-1k indices), None = all

    def target_of(self, image: str) -> int:
        """The ImageNet-1k class of an image name; ValueError naming the reason."""
        parts = PurePosixPath(image.replace("\\", "/")).parts
        if len(parts) < 2:
            raise ValueError(f"expected FOLDER/FILE ({'WNID' if self.folder == 'wnid' else 'CLASS_INDEX'}/FILE)")
        folder = parts[-2]
        vocab = Vocabulary.imagenet()
        if self.folder == "wnid":
            if folder not in vocab:
                raise ValueError(f"folder {folder!r} is not an ImageNet-1k wnid")
            target = vocab.index(folder)
        else:
            if not (folder.isascii() and folder.isdigit()) or not 0 <= int(folder) < len(vocab):
                raise ValueError(f"folder {folder!r} is not a class index 0..{len(vocab) - 1}")
            target = int(folder)
        if self.classes is not None and target not in self._subset:
            raise ValueError(f"class {folder} is not one of the {self.classes.shape[0]} classes of {self.name}")
        return target

    @property
    def _subset(self) -> frozenset[int]:
        return frozenset(() if self.classes is None else self.classes.tolist())

    def image_name(self, image: str) -> str:
        """The canonical name of an image: ``FOLDER/FILE``."""
        parts = PurePosixPath(image.replace("\\", "/")).parts
        return "/".join(parts[-2:])

    def labeled(self, images: Sequence[str], source: str) -> LabeledImages:
        """The images with their targets as labels (InputError naming the first bad image)."""
        names: list[str] = []
        target: list[int] = []
        seen: set[str] = set()
        for i, raw in enumerate(images):
            name = self.image_name(raw)
            try:
                target.append(self.target_of(name))
            except ValueError as error:
                raise InputError(source, f"{error}", where=f"image {i + 1} ({raw!r})") from None
            if name in seen:
                raise InputError(source, f"duplicate image {name!r}", where=f"image {i + 1}")
            seen.add(name)
            names.append(name)
        if not names:
            raise InputError(source, f"no {self.name} images")
        return LabeledImages.from_lists(images=names, target=target, labels=[[t] for t in target], source=source)


@lru_cache(maxsize=1)
def imagenet_a_classes() -> np.ndarray:
    """The 200 ImageNet-1k class indices of ImageNet-A, in ImageNet-A's class order (read-only)."""
    vocab = Vocabulary.imagenet()
    out = []
    for line in (DATA / "imagenet_a_classes.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            index, wnid = line.split()
            if vocab.index(wnid) != int(index):
                raise ValueError(f"imagenet_a_classes.txt: {wnid} is class {vocab.index(wnid)}, not {index}")
            out.append(int(index))
    classes = np.array(out, np.int64)
    classes.flags.writeable = False
    return classes


_DEFINITIONS: dict[str, Callable[[], DatasetDefinition]] = {
    "imagenet-a": lambda: DatasetDefinition(
        "imagenet-a", "ImageNet-A: 7,500 natural adversarial images of 200 classes, WNID/FILE.jpg",
        "wnid", imagenet_a_classes()),
    "imagenet-v2": lambda: DatasetDefinition(
        "imagenet-v2", "ImageNetV2: 10,000 images in folders named by class index, INDEX/FILE.jpeg",
        "index", None),
}
DATASETS = tuple(_DEFINITIONS)


def dataset(name: str) -> DatasetDefinition:
    """The built-in definition ``name`` (ValueError listing the known ones)."""
    make = _DEFINITIONS.get(name)
    if make is None:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return make()


def list_images(root: str | os.PathLike[str]) -> list[str]:
    """``FOLDER/FILE`` of every image in the class folders under ``root``, sorted."""
    base = Path(root)
    return sorted(f"{p.parent.name}/{p.name}" for p in base.glob("*/*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_dataset_images(definition: DatasetDefinition, source: str | os.PathLike[str]) -> LabeledImages:
    """The images of a dataset: a directory of class folders, or a text file of image names (one a
    line, ``#`` comments)."""
    path = Path(source)
    if path.is_dir():
        names = list_images(path)
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(path, f"cannot read: {error.strerror or error}") from None
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return definition.labeled(names, os.fspath(path))
