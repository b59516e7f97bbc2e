"""The ``errortaxa oov`` subcommands: ``proposals`` (no torch needed), ``index`` and ``embed``, added by
the OOV factory. Importing this module is cheap; torch and open_clip load when a command runs."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from errortaxa.engine.compile.compiler import compile_path, default_compiled
from errortaxa.engine.inputs import InputError
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.engine.providers.factory import ProviderUnavailable
from errortaxa.providers.oov.config import OOVConfig, read_config_file
from errortaxa.providers.oov.errors import OOVError
from errortaxa.providers.oov.extra import missing
from errortaxa.providers.oov.proposals import generate_many, proposals_json

_MODEL_FLAGS = ("model", "pretrained", "checkpoint", "device", "precision", "batch_size", "num_workers",
                "cache_dir", "open_clip_cache_dir")  # fmt: skip


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--oov-config", help="YAML/JSON file of OOV settings (docs/OOV.md); flags override it")
    p.add_argument("--model", help="open_clip architecture (default ViT-L-14-336) or local-dir:PATH")
    p.add_argument("--pretrained", help="open_clip tag whose weights are in the local cache, or a file")
    p.add_argument("--checkpoint", help="local weights file")
    p.add_argument("--device", help="auto | cpu | cuda[:N]")
    p.add_argument("--precision", help="auto | bf16 | fp32")
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--workers", type=int, dest="num_workers", help="DataLoader workers for decoding")
    p.add_argument("--cache-dir", dest="cache_dir", help="embedding cache root ('none' to disable)")
    p.add_argument("--open-clip-cache-dir", dest="open_clip_cache_dir")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``oov proposals``, ``oov index`` and ``oov embed`` to the ``errortaxa`` parser's subcommands."""
    oov = sub.add_parser("oov", help="the open-world (OOV) provider's tools")
    osub = oov.add_subparsers(dest="oov_command", required=True)
    p = osub.add_parser("proposals", help="the WordNet prompts the OOV test scores for (pred, target)")
    p.add_argument("--pred", type=int)
    p.add_argument("--target", type=int)
    p.add_argument("--pairs", help='JSONL lines {"pred": INT, "target": INT}; one JSON list per line out')
    p.add_argument("--taxonomy", help="taxonomy whose superclasses are used (default: the embedded default)")
    p.set_defaults(func=cmd_proposals)

    p = osub.add_parser("index", help="embed a training set (ImageFolder dir) into a kNN index for the OOV gate")
    p.add_argument("images", help="ImageFolder-style directory (class dirs named by wnid), or a root for --labels")
    p.add_argument("--out", required=True, help="index directory to write")
    p.add_argument("--labels", help="text file of 'relative/path CLASS_INDEX' lines (instead of class dirs)")
    p.add_argument("--class-names", default="auto", choices=["auto", "wnid", "sorted", "int"],
                   help="how class directories map to class indices (default: wnid when all are wnids)")
    p.add_argument("--limit-per-class", type=int, help="at most N images per class")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    _model_args(p)
    _ray_args(p)
    p.set_defaults(func=cmd_index, extra="oov")

    p = osub.add_parser("embed", help="embed images into the on-disk cache (one pass shared by every later run)")
    p.add_argument("images", nargs="+", help="image files or directories (searched recursively)")
    _model_args(p)
    _ray_args(p)
    p.set_defaults(func=cmd_embed, extra="oov")


def _ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", metavar="ADDRESS", help="run as a Ray Data job on this cluster ('local': a local "
                   "instance); one actor per GPU, or CPU actors without GPUs (docs/OOV.md)")
    p.add_argument("--actors", type=int, help="with --ray: actors (default: one per GPU, else CPUs / 4)")
    p.add_argument("--ray-batch-size", type=int, help="with --ray: images per actor call (default: 8 batches)")
    p.add_argument("--cpus-per-actor", type=float, help="with --ray: CPUs reserved per actor (decoding)")


def _ray_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"address": args.ray, "actors": args.actors, "batch_size": args.ray_batch_size,
            "cpus_per_actor": args.cpus_per_actor}


def config_from_args(args: argparse.Namespace) -> OOVConfig:
    settings: dict[str, Any] = {}
    if getattr(args, "oov_config", None):
        try:
            settings.update(read_config_file(args.oov_config))
        except OOVError as exc:
            raise type(exc)(f"--oov-config {args.oov_config}: {exc}") from None
    for key in _MODEL_FLAGS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    if getattr(args, "checkpoint", None):
        settings.setdefault("pretrained", None)
    return OOVConfig.from_mapping(settings)


def _user_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Configuration and weights problems as one line on stderr and exit status 2."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (OOVError, ValueError) as exc:
            print(f"errortaxa: error: {exc}", file=sys.stderr)
            return 2

    return run


def _needs_extra(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command that needs the oov extra: without it, one line naming the extra (exit status 2)."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        reason = missing()
        if reason is not None:
            raise ProviderUnavailable(f"'oov {args.oov_command}' {reason}")
        return func(args)

    return run


def read_pairs(path: str, num_classes: int) -> list[tuple[int, int]]:
    """JSONL lines {"pred": INT, "target": INT}; errors name the line and field."""
    pairs = []
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"invalid JSON: {exc.msg}", record=number) from None
            if not isinstance(record, dict):
                raise InputError(path, "must be a JSON object", record=number)
            values = []
            for field in ("pred", "target"):
                value = record.get(field)
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < num_classes:
                    raise InputError(path, f"must be a class id 0..{num_classes - 1}", record=number, field=field)
                values.append(value)
            pairs.append((values[0], values[1]))
    return pairs


@_user_errors
def cmd_proposals(args: argparse.Namespace) -> int:
    taxonomy = default_compiled() if args.taxonomy is None else compile_path(args.taxonomy)
    n = len(taxonomy.vocabulary)
    if args.pairs:
        pairs = read_pairs(args.pairs, n)
    elif args.pred is not None and args.target is not None:
        for field, value in (("--pred", args.pred), ("--target", args.target)):
            if not 0 <= value < n:
                raise ValueError(f"{field}: class id {value} is outside 0..{n - 1}")
        pairs = [(args.pred, args.target)]
    else:
        raise ValueError("give --pred and --target, or --pairs FILE")
    lists = generate_many(pairs, wordnet=WordNet.load(), vocab=taxonomy.vocabulary,
                          same_superclass=taxonomy.same_superclass)
    for proposals in lists:
        print(json.dumps(proposals_json(proposals)))
    return 0


@_user_errors
@_needs_extra
def cmd_index(args: argparse.Namespace) -> int:
    from errortaxa.providers.oov.knn import build_index

    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - t0, 1e-9)
        print(f"\r{done}/{total} images ({rate:.1f}/s)", end="", file=sys.stderr, flush=True)

    quiet = getattr(args, "quiet", False)  # errortaxa -q/--quiet: no progress line
    listing = {"labels": args.labels, "class_names": args.class_names, "limit_per_class": args.limit_per_class,
               "dtype": args.dtype, "progress": None if quiet else progress}
    if args.ray:
        from errortaxa.providers.oov.ray_index import build_index_ray

        index = build_index_ray(args.images, args.out, config=config_from_args(args), **_ray_options(args), **listing)
    else:
        from errortaxa.providers.oov.model import ClipEncoder

        index = build_index(args.images, args.out, encoder=ClipEncoder(config_from_args(args)), **listing)
    if not quiet:
        print(file=sys.stderr)
    print(json.dumps({"index": str(args.out), **{k: index.meta.get(k) for k in (
        "count", "skipped", "num_classes", "dim", "model", "model_id", "space_id", "seconds")}}))
    return 0


@_user_errors
@_needs_extra
def cmd_embed(args: argparse.Namespace) -> int:
    from pathlib import Path

    from errortaxa.providers.oov.embed import ImageEmbedder, set_deterministic
    from errortaxa.providers.oov.images import is_image_file, list_images
    from errortaxa.providers.oov.model import ClipEncoder

    items: list[str] = []
    for src in args.images:
        items.extend(list_images(src) if Path(src).is_dir() else [src] if is_image_file(src) else [])
    if args.ray:
        from errortaxa.providers.oov.ray_index import embed_cache_ray

        show = sys.stderr.isatty() and not getattr(args, "quiet", False)
        report = embed_cache_ray(items, config=config_from_args(args), progress=show,
                                 **_ray_options(args))
        print(json.dumps(report))
        return 0 if report["failed"] == 0 else 1
    encoder = ClipEncoder(config_from_args(args))
    if encoder.config.resolved_cache_dir() is None:
        raise ValueError("oov embed fills the embedding cache; it cannot run with the cache disabled")
    set_deterministic()
    embedder = ImageEmbedder.from_encoder(encoder)
    result = embedder.embed(items)
    print(json.dumps({"model_id": encoder.model_id, **result.stats.as_dict()}))
    return 0 if result.ok.all() else 1
