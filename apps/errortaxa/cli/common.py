"""What the ``errortaxa`` subcommands share: the taxonomy argument, reading the input, writing the output."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson
from errortaxa.engine import CompiledTaxonomy, SampleBatch, compile_path, default_compiled
from errortaxa.engine.inputs import read_labels, read_predictions

CHUNK = 100_000


def taxonomy_from(path: str | None) -> CompiledTaxonomy:
    """The default taxonomy, or the one at ``path``; the validator's warnings go to stderr."""
    if path is None:
        return default_compiled()
    taxonomy = compile_path(path)
    for warning in taxonomy.warnings:
        print(warning, file=sys.stderr)
    return taxonomy


def read_input(path: str, labels: str | None, num_classes: int = 1000) -> tuple[SampleBatch, int]:
    """The samples of a predictions file in any registered format (JSONL records carry their
    labels; others are joined with --labels); and the number of images skipped for lack of labels."""
    predictions = read_predictions(path, num_classes)
    label_set = None if labels is None or predictions.samples is not None else read_labels(labels)
    return predictions.with_labels(label_set, num_classes)


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


def dumps(obj: Any) -> str:
    """One JSON record (compact)."""
    return orjson.dumps(obj).decode()
