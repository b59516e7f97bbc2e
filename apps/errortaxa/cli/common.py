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
from errortaxa.engine.inputs import Columns, ReadOptions, read_labels, read_predictions

CHUNK = 100_000
COLUMNS_HELP = ("column names of a table input, e.g. 'image=file,pred=top1' or 'scores=logits' (also the array of "
                "an .npz, the key of a .pt dict; target= and labels= for a label table); default: the usual names")


def taxonomy_from(path: str | None) -> CompiledTaxonomy:
    return default_compiled() if path is None else compile_path(path)


def read_options(taxonomy: CompiledTaxonomy | None, columns: str | None = None) -> ReadOptions:
    """How to read prediction files for ``taxonomy``: its vocabulary (class names resolve through
    it; None: ImageNet-1k) and the ``--columns`` of tables (``image=file,pred=top1``)."""
    return ReadOptions(vocabulary=None if taxonomy is None else taxonomy.vocabulary,
                       columns=Columns.parse(columns) if columns else Columns())


def label_options(options: ReadOptions) -> ReadOptions:
    """How to read the label set beside predictions read with ``options``: the same vocabulary, and
    of the ``--columns`` only ``target`` and ``labels`` (a label table names its images its own way)."""
    return ReadOptions(vocabulary=options.vocabulary,
                       columns=Columns(target=options.columns.target, labels=options.columns.labels))


def read_input(path: str, labels: str | None, options: ReadOptions | None = None) -> tuple[SampleBatch, int]:
    """The samples of a predictions file in any registered format (JSONL records carry their
    labels; others are joined with --labels); and the number of images skipped for lack of labels."""
    options = options or ReadOptions()
    predictions = read_predictions(path, options)
    label_set = None if labels is None or predictions.samples is not None else \
        read_labels(labels, label_options(options))
    return predictions.with_labels(label_set, options.num_classes)


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
