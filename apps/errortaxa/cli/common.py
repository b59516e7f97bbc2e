"""What the ``errortaxa`` subcommands share: the taxonomy argument, reading the input, one JSON record,
the note on skipped images (files are written by errortaxa.engine.outputs)."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from errortaxa.engine import CompiledTaxonomy, SampleBatch, compile_path, default_compiled
from errortaxa.engine.inputs import read_labels, read_predictions

CHUNK = 100_000


def taxonomy_from(path: str | None) -> CompiledTaxonomy:
    return default_compiled() if path is None else compile_path(path)


def read_input(path: str, labels: str | None, num_classes: int = 1000) -> tuple[SampleBatch, int]:
    """The samples of a predictions file in any registered format (JSONL records carry their
    labels; others are joined with --labels); and the number of images skipped for lack of labels."""
    predictions = read_predictions(path, num_classes)
    label_set = None if labels is None or predictions.samples is not None else read_labels(labels)
    return predictions.with_labels(label_set, num_classes)


def dumps(obj: Any) -> str:
    """One JSON record (compact)."""
    return orjson.dumps(obj).decode()


def note_skipped(skipped: int, quiet: bool) -> None:
    """The one note on stderr about images skipped for lack of labels (none with ``--quiet``)."""
    if skipped and not quiet:
        print(f"errortaxa: {skipped} image(s) without labels were skipped", file=sys.stderr)
