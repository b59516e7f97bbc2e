"""What the ``errortaxa`` subcommands share: the taxonomy argument, reading the input, writing the output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from errortaxa.cli.errors import UsageError
from errortaxa.engine import CompiledTaxonomy, SampleBatch, compile_path, default_compiled
from errortaxa.engine.inputs import load_label_file, read_jsonl, read_predictions_npz

CHUNK = 100_000


def taxonomy_from(path: str | None) -> CompiledTaxonomy:
    return default_compiled() if path is None else compile_path(path)


def read_input(path: str, labels: str | None) -> tuple[SampleBatch, int]:
    """A batch from JSONL records or an .npz of predictions (with --labels); and the number of
    images skipped for lack of labels."""
    if path.endswith(".npz"):
        if labels is None:
            raise UsageError(f"{path}: .npz predictions need --labels (the multi-label CSV or a ReaL json)")
        return read_predictions_npz(path, load_label_file(labels))
    return read_jsonl(path), 0


@contextmanager
def output_stream(path: str | None) -> Iterator[IO[str]]:
    """stdout, or a file written beside its final name and renamed into place when complete."""
    if path is None:
        yield sys.stdout
        return
    final = Path(path)
    partial = final.with_name(final.name + ".partial")
    with open(partial, "w", encoding="utf-8") as stream:
        yield stream
    os.replace(partial, final)


def dumps() -> Callable[[Any], str]:
    try:
        import orjson

        return lambda obj: orjson.dumps(obj).decode()
    except ImportError:  # pragma: no cover - orjson is optional
        return lambda obj: json.dumps(obj, separators=(",", ":"))
