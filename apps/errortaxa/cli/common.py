"""What the ``errortaxa`` subcommands share: the taxonomy argument, reading the input, one JSON record,
the note on skipped images (files are written by errortaxa.engine.outputs)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

import orjson
from errortaxa.engine import CompiledTaxonomy, SampleBatch, compile_path, default_compiled
from errortaxa.engine.inputs import Columns, ReadOptions, read_labels, read_predictions
from errortaxa.engine.language import limits
from errortaxa.engine.providers import registry

CHUNK = 100_000
TAXONOMY_HELP = "taxonomy YAML file or built-in name (default: the embedded default)"
COLUMNS_HELP = ("column names of a table input, e.g. 'image=file,pred=top1' or 'scores=logits' (also the array of "
                "an .npz, the key of a .pt dict; target= and labels= for a label table); default: the usual names")


def add_limit_option(parser: argparse.ArgumentParser) -> None:
    """``--limit NAME=VALUE`` (repeatable) on a command that compiles taxonomies: the server's
    taxonomy limits, over their ``$ERRORTAXA_TAXONOMY_*`` variables (:func:`configure_limits`)."""
    parser.add_argument("--limit", action="append", metavar="NAME=VALUE",
                        help="raise or lower a taxonomy limit, as the server's taxonomy_NAME setting (repeatable): "
                        + ", ".join(f"{name} ({limits.BOUNDS[name]}, default {getattr(limits.Limits, name):,})"
                                    for name in limits.NAMES)
                        + "; also $ERRORTAXA_TAXONOMY_NAME")


def configure_limits(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> None:
    """Set this process's taxonomy limits from the environment and ``--limit`` when the command has
    the option (InvalidInput naming a bad name or value)."""
    if hasattr(args, "limit"):
        limits.configure(limits.from_settings(environ, args.limit or ()))


def compile_file(path: str, *, strict: bool = False) -> CompiledTaxonomy:
    """The taxonomy at ``path``, its ``feature:`` checked against the installed providers'
    declarations (``strict``: a provider that is not installed is an error, not a warning)."""
    return compile_path(path, providers=registry.declarations(), missing_provider="error" if strict else "warning")


def taxonomy_from(path: str | None) -> CompiledTaxonomy:
    """The default taxonomy, or the one at ``path``; the validator's warnings go to stderr."""
    if path is None:
        return default_compiled()
    taxonomy = compile_file(path)
    for warning in taxonomy.warnings:
        print(warning, file=sys.stderr)
    return taxonomy


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


def dumps(obj: Any) -> str:
    """One JSON record (compact)."""
    return orjson.dumps(obj).decode()


def note_skipped(skipped: int, quiet: bool) -> None:
    """The one note on stderr about images skipped for lack of labels (none with ``--quiet``)."""
    if skipped and not quiet:
        print(f"errortaxa: {skipped} image(s) without labels were skipped", file=sys.stderr)
