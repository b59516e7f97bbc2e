"""What a study read, recorded in its ``study.json`` so that the study can be reopened (``errortaxa
explore STUDY_DIR``): every model file and side file with its absolute path and content hash, the
options that change the numbers, and the taxonomy's text and content hash.

:func:`reopen` checks the record against the files as they are now: a file that moved or changed
is one line naming it (:class:`SourcesChanged`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errortaxa.engine import CompiledTaxonomy
from errortaxa.engine.errors import InvalidInput
from errortaxa.study.models import ModelFile, PathLike

FORMAT = 1  # the layout of the record below


class SourcesChanged(InvalidInput):
    """Files of a recorded study moved or changed: one line each in ``lines``."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def file_hash(path: PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes; of a folder (e.g. a dataset's class folders), of its
    listing: every file's relative name and size."""
    digest = hashlib.sha256()
    if Path(path).is_dir():
        root = Path(path)
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(f"{file.relative_to(root).as_posix()}\t{file.stat().st_size}\n".encode())
        return digest.hexdigest()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file(path: PathLike) -> dict[str, str]:
    return {"path": str(Path(path).resolve()), "sha256": file_hash(path)}


def study_sources(models: Sequence[ModelFile], taxonomy_source: str | None, taxonomy: CompiledTaxonomy, *,
                  files: Mapping[str, PathLike | None], options: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a study's sources: ``models`` (name, path, sha256), the side ``files``
    (labels, image list, metadata, provider configs, ...: path, sha256), the ``options`` that change
    the numbers (dataset, columns) and the taxonomy (``source``: the --taxonomy argument, a file's
    absolute path or a built-in name, None for the default; its ``text``, ``sha256`` and ``hash``)."""
    source = taxonomy_source
    if source is not None and Path(source).is_file():
        source = str(Path(source).resolve())
    main = taxonomy.loaded.sources[0]
    return {
        "format": FORMAT,
        "models": [{"name": m.name, **_file(m.path)} for m in models],
        "files": {key: _file(path) for key, path in files.items() if path is not None},
        "options": dict(options),
        "taxonomy": {"source": source, "name": taxonomy.name, "hash": taxonomy.content_hash, "text": main.text,
                     "sha256": hashlib.sha256(main.text.encode()).hexdigest()},
    }


@dataclass
class ReopenedSources:
    """A recorded study's sources, checked: model files, side files by key, options, taxonomy source."""

    models: list[ModelFile]
    files: dict[str, str]
    options: dict[str, Any]
    taxonomy_source: str | None
    taxonomy_hash: str


def is_study_dir(path: PathLike) -> bool:
    """Whether ``path`` is a study output folder (a ``study.json`` that records its sources)."""
    about = Path(path) / "study.json"
    if not about.is_file():
        return False
    try:
        return "sources" in json.loads(about.read_text("utf-8"))
    except (OSError, ValueError):
        return False


def reopen(study_dir: PathLike) -> ReopenedSources:
    """The sources ``study_dir/study.json`` records, each checked to be where it was with the same
    content (SourcesChanged: one line per file that moved or changed; InvalidInput: no record)."""
    about_path = Path(study_dir) / "study.json"
    try:
        about = json.loads(about_path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidInput(f"{about_path}: cannot read: {error}") from None
    record = about.get("sources") if isinstance(about, dict) else None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InvalidInput(f"{about_path}: records no sources (a study written before sources were recorded: "
                           "run errortaxa study again)")
    lines: list[str] = []

    def check(what: str, entry: Mapping[str, str]) -> str:
        path = entry["path"]
        if not Path(path).exists():
            lines.append(f"{about_path}: {what} {path} is missing (moved or deleted since the study)")
        elif file_hash(path) != entry["sha256"]:
            lines.append(f"{about_path}: {what} {path} changed since the study (its content hash differs)")
        return path

    models = [ModelFile(m["name"], check(f"model '{m['name']}':", m)) for m in record["models"]]
    files = {key: check(f"{key}:", entry) for key, entry in record["files"].items()}
    tax = record["taxonomy"]
    source = tax["source"]
    if source is not None and Path(source).is_absolute():
        if not Path(source).is_file():
            lines.append(f"{about_path}: taxonomy: {source} is missing (moved or deleted since the study)")
        elif hashlib.sha256(Path(source).read_text("utf-8").encode()).hexdigest() != tax["sha256"]:
            lines.append(f"{about_path}: taxonomy: {source} changed since the study (its content hash differs)")
    if lines:
        raise SourcesChanged(lines)
    return ReopenedSources(models, files, dict(record["options"]), source, tax["hash"])
