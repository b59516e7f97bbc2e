"""``errortaxa explore``: the study's sources (or a study folder) served as a local web application
(errortaxa.explore; the explore extra)."""

from __future__ import annotations

import argparse
import importlib
import os
import secrets
import shlex
import sys
import threading
from pathlib import Path
from typing import Any

from errortaxa.cli.common import add_limit_option
from errortaxa.cli.errors import UsageError
from errortaxa.cli.study import add_source_options, study_inputs
from errortaxa.engine.providers import registry

__all__ = ["register"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SIDE_FILES = ("labels", "image_list", "metadata", "val_labels")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("explore", help="see every error with its image, edit the rules and watch the figures move "
                                       "(a local web application; docs/EXPLORER.md)")
    add_source_options(p)  # SOURCES: prediction files or folders as study reads them, or a study's --out folder
    p.add_argument("--images", metavar="DIR", help="the validation images (ImageNet's val/: flat or in class folders); "
                                                   "missing ones show a placeholder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs --token)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.add_argument("--token", action="store_true",
                   help="require a token: $ERRORTAXA_TOKEN, else a random one printed once (kept by the page in an "
                        "HttpOnly cookie, never in a URL)")
    p.add_argument("--allow-save", action="store_true", help="let the page save an edited taxonomy to the --taxonomy "
                                                             "file (never to another path)")
    p.add_argument("--notes", metavar="FILE", help="JSONL file the page appends image notes to (label problem, "
                                                    "non-prototypical); a taxonomy can name it as a sample list")
    p.add_argument("--views", type=int, default=4, help="compiled taxonomies kept with their decisions (default 4)")
    add_limit_option(p)
    p.set_defaults(func=cmd_explore, extra="explore")


def _reopen(args: argparse.Namespace) -> str | None:
    """A study folder as the one source: its recorded sources fill the options not given; the
    taxonomy content hash it recorded (None: not a study folder)."""
    from errortaxa.study.sources import SourcesChanged, is_study_dir, reopen

    if len(args.sources) != 1 or not is_study_dir(args.sources[0]):
        return None
    try:
        record = reopen(args.sources[0])
    except SourcesChanged as changed:
        for line in changed.lines[:-1]:
            print(f"errortaxa: error: {line}", file=sys.stderr)
        raise UsageError(changed.lines[-1]) from None
    args.sources = [m.path for m in record.models]
    for key in SIDE_FILES:
        if getattr(args, key) is None:
            setattr(args, key, record.files.get(key))
    for factory in registry.factories():
        if getattr(args, factory.config_key, None) is None and f"{factory.name}_config" in record.files:
            setattr(args, factory.config_key, record.files[f"{factory.name}_config"])
    if args.dataset == "imagenet":
        args.dataset = record.options.get("dataset", "imagenet")
    if args.columns is None:
        args.columns = record.options.get("columns")
    if args.taxonomy is None:
        args.taxonomy = record.taxonomy_source
        return record.taxonomy_hash
    return None


def _study_command(args: argparse.Namespace) -> str:
    """The ``errortaxa study`` command over the same sources and options (without --out)."""
    words = ["errortaxa", "study", *args.sources]
    for key in ("columns", "labels", "taxonomy", "metadata", "image_list", "val_labels"):
        value = getattr(args, key)
        if value is not None:
            words += [f"--{key.replace('_', '-')}", str(value)]
    for factory in registry.factories():
        value = getattr(args, factory.config_key, None)
        if value is not None:
            words += [factory.config_option, value]
    if args.dataset != "imagenet":
        words += ["--dataset", args.dataset]
    return shlex.join(words)


def cmd_explore(args: argparse.Namespace) -> int:
    server = make_server(args)
    if not args.quiet:
        corpus = server.explorer.corpus
        print(f"errortaxa explore: {len(corpus.models)} models x {len(corpus.image_names)} images, "
              f"{corpus.error_total} errors ({len(corpus.error_pairs)} distinct)", file=sys.stderr)
    print(server.url, flush=True)
    # the statistics' scipy, imported now rather than on the first table or edit
    threading.Thread(target=importlib.import_module, args=("errortaxa.study.stats",), daemon=True).start()
    if server.token is not None and not os.environ.get("ERRORTAXA_TOKEN"):
        print(f"token: {server.token}", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def make_server(args: argparse.Namespace) -> Any:
    """The explorer's server (errortaxa.explore.server.ExploreServer, bound, not serving yet) for
    parsed ``explore`` arguments."""
    import PIL  # the explore extra: a missing one is the one-line missing-extra error
    from errortaxa.explore.app import Explorer, edit_data_dirs
    from errortaxa.explore.data import ExploreInputs
    from errortaxa.explore.images import ImageFolder
    from errortaxa.explore.server import ExploreServer
    from errortaxa.study.models import read_model

    del PIL
    given_sources = list(args.sources)
    recorded_hash = _reopen(args)
    token = None
    if args.token:
        token = os.environ.get("ERRORTAXA_TOKEN") or secrets.token_urlsafe(24)
    elif args.host not in LOOPBACK:
        token = os.environ.get("ERRORTAXA_TOKEN")
        if not token:
            raise UsageError(f"--host {args.host}: any host but 127.0.0.1 needs --token (or $ERRORTAXA_TOKEN)")
    taxonomy_path = Path(args.taxonomy) if args.taxonomy is not None and Path(args.taxonomy).is_file() else None
    if args.allow_save and taxonomy_path is None:
        raise UsageError("--allow-save needs --taxonomy FILE (the only file the page may save to)")
    if args.images is not None and not Path(args.images).is_dir():
        raise UsageError(f"--images {args.images}: not a folder")
    if args.views < 1:
        raise UsageError("--views must be at least 1")
    inputs = study_inputs(args)
    if recorded_hash is not None and inputs.taxonomy.content_hash != recorded_hash:
        raise UsageError(f"{given_sources[0]}/study.json: taxonomy {args.taxonomy or 'default'} compiles to "
                         f"{inputs.taxonomy.content_hash}, not {recorded_hash} as in the study (its files, sample "
                         "lists or the engine changed)")
    import numpy as np

    preds = np.stack([read_model(m.path, inputs.images, inputs.options) for m in inputs.models])
    explore_inputs = ExploreInputs(
        taxonomy=inputs.taxonomy, images=inputs.images, models=inputs.models, preds=preds,
        providers=inputs.providers, metadata=inputs.metadata, image_list=inputs.image_list, extra=inputs.extra,
        dataset=args.dataset, read_options=inputs.options, taxonomy_path=taxonomy_path,
        command=_study_command(args))
    notes = Path(args.notes) if args.notes else None
    known = [d for d in os.environ.get("ERRORTAXA_DATA_DIR", "").split(os.pathsep) if d]
    os.environ["ERRORTAXA_DATA_DIR"] = os.pathsep.join(dict.fromkeys(
        [*known, *edit_data_dirs(inputs.taxonomy, notes)]))  # this process's: edits find the same files
    explorer = Explorer(explore_inputs, yaml_text=inputs.taxonomy.loaded.sources[0].text, sources=given_sources,
                        views=args.views, allow_save=args.allow_save,
                        notes=notes, token_required=token is not None)
    corpus = explorer.corpus
    wnids = inputs.taxonomy.vocabulary.wnids

    def class_folder(name: str) -> str | None:
        row = corpus.image_index.get(name)
        return None if row is None else wnids[int(corpus.target[row])]

    images = ImageFolder(Path(args.images) if args.images else None, class_folder)
    try:
        return ExploreServer(explorer, images, args.host, args.port, token=token)
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
