"""The subcommands of ``errortaxa``: thin shells over the engine, the server and the OOV provider."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson
from errortaxa.cli.errors import UsageError
from errortaxa.engine import (
    CompiledTaxonomy,
    Decisions,
    SampleBatch,
    compile_path,
    default_compiled,
    summarize,
)
from errortaxa.engine.inputs import read_labels, read_predictions
from errortaxa.engine.language.schema import json_schema
from errortaxa.engine.providers import FeatureProvider
from tqdm import tqdm

CHUNK = 100_000


def taxonomy_from(path: str | None) -> CompiledTaxonomy:
    return default_compiled() if path is None else compile_path(path)


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


def cmd_classify(args: argparse.Namespace) -> int:
    if args.server:
        from errortaxa.cli.remote import classify_remote

        return classify_remote(args)
    taxonomy = taxonomy_from(args.taxonomy)
    batch, skipped = read_input(args.input, args.labels, len(taxonomy.vocabulary))
    batch.validate(len(taxonomy.vocabulary))
    providers = oov_providers(args.oov_config, taxonomy)
    parts = []
    with output_stream(args.output) as out, tqdm(
        total=len(batch), unit="pred", disable=None if len(batch) > CHUNK else True, file=sys.stderr
    ) as bar:
        for start in range(0, len(batch), CHUNK):
            part = batch.slice(start, min(start + CHUNK, len(batch)))
            decisions = taxonomy.evaluate(part, providers, validate=False)
            out.write("".join(dumps(r) + "\n" for r in decisions.records()))
            parts.append(decisions)
            bar.update(len(part))
    if args.summary:
        decisions = Decisions.concatenate(parts, batch) if parts else taxonomy.evaluate(batch, validate=False)
        with output_stream(args.summary) as out:
            json.dump(summarize(taxonomy, decisions, skipped=skipped), out, indent=2)
            out.write("\n")
    if skipped:
        print(f"errortaxa: {skipped} image(s) without labels were skipped", file=sys.stderr)
    return 0


def oov_providers(config: str | None, taxonomy: CompiledTaxonomy) -> dict[str, FeatureProvider]:
    """The OOV provider when configured (it needs torch and open_clip: ``pip install errortaxa[oov]``).
    ``config`` is a YAML or JSON file of OOV settings (model, checkpoint, index; docs/OOV.md)."""
    if config is None:
        return {}
    import yaml
    from errortaxa.providers.oov.config import OOVConfig, read_config_file
    from errortaxa.providers.oov.errors import OOVConfigError, OOVError

    try:
        settings = read_config_file(config)
    except yaml.YAMLError as exc:
        raise UsageError(f"--oov-config {config}: invalid YAML/JSON: {exc}") from None
    except OOVConfigError:
        raise UsageError(f"--oov-config {config}: must be a mapping of settings") from None
    try:
        from errortaxa.providers.oov.provider import OOVProvider, shared_model
    except ImportError as exc:
        raise UsageError(f"--oov-config needs the oov extra (pip install 'errortaxa[oov]'): {exc}") from None
    try:
        cfg = OOVConfig.from_mapping(settings)
        encoder, index = shared_model(cfg)
        provider = OOVProvider(cfg, same_superclass=taxonomy.same_superclass, vocab=taxonomy.vocabulary,
                               encoder=encoder, index=index)
    except (OOVError, ValueError) as exc:
        raise UsageError(f"--oov-config {config}: {exc}") from None
    return {provider.name: provider}


def cmd_rules_validate(args: argparse.Namespace) -> int:
    taxonomy = compile_path(args.file)
    for warning in taxonomy.warnings:
        print(warning, file=sys.stderr)
    rules = sum(len(axis.rules) for axis in taxonomy.axes.values())
    print(f"ok: {taxonomy.name} {taxonomy.version} ({taxonomy.content_hash}): {len(taxonomy.axes)} axis(es), "
          f"{rules} rules, {len(taxonomy.superclass_names)} superclasses, {len(taxonomy.warnings)} warning(s)")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    taxonomy = compile_path(args.file)
    results = taxonomy.run_cases()
    failed = [r for r in results if not r.passed and r.not_checked is None]
    unchecked = [r for r in results if r.not_checked is not None]
    for r in results:
        where = f"{r.file}:{r.line}" if r.line else r.file
        if r.passed:
            print(f"PASS {r.name}")
        elif r.not_checked is not None:
            print(f"SKIP {r.name} ({where}): not checkable here, a rule it reaches was not evaluated: "
                  f"{r.not_checked}")
        else:
            wrong = ", ".join(f"{k}: expected {v}, got {r.got.get(k)}" for k, v in r.expected.items()
                              if r.got.get(k) != v)
            print(f"FAIL {r.name} ({where}): {wrong}")
    print(f"{len(results) - len(failed) - len(unchecked)} passed, {len(failed)} failed, "
          f"{len(unchecked)} not checked")
    return 1 if failed else 0


def parse_record(text: str) -> SampleBatch:
    """One JSON record as given to ``rules explain``."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--record: invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(record, dict):
        raise UsageError("--record: must be a JSON object")
    for field in ("target", "pred"):
        if not isinstance(record.get(field), int) or isinstance(record.get(field), bool):
            raise UsageError(f"--record: field '{field}': must be an integer class id")
    labels = record.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in labels):
        raise UsageError("--record: field 'labels': must be a list of integer class ids")
    image = record.get("image")
    return SampleBatch.from_lists(
        target=[record["target"]], pred=[record["pred"]], labels=[labels],
        problematic=[bool(record.get("problematic", False))],
        images=[image] if isinstance(image, str) else None,
    )


def cmd_rules_explain(args: argparse.Namespace) -> int:
    taxonomy = compile_path(args.file)
    batch = parse_record(args.record)
    traces = taxonomy.explain(batch, 0)
    decided = taxonomy.evaluate(batch).record(0)
    if args.json:
        print(json.dumps({"decision": decided, "trace": [t.__dict__ for t in traces]}, indent=2))
        return 0
    b = batch
    print(f"sample: target {taxonomy.class_label(int(b.target[0]))}; pred {taxonomy.class_label(int(b.pred[0]))}; "
          f"labels {b.labels_of(0)}; problematic {bool(b.problematic[0])}")
    for t in traces:
        print(f"  [{t.axis}] {t.rule:<28} -> {t.value:<24} {t.result.upper()}: {t.detail}")
    print("decision: " + json.dumps(decided))
    return 0


def cmd_rules_show(args: argparse.Namespace) -> int:
    taxonomy = compile_path(args.file)
    if args.superclass:
        try:
            members = taxonomy.superclass_members(args.superclass)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        description = taxonomy.document.superclasses[args.superclass].description
        print(f"{args.superclass}: {len(members)} classes. {description}")
        for c in members:
            print(f"  {taxonomy.class_label(c)}")
        return 0
    ref: int | str = int(args.class_) if args.class_.isdigit() else args.class_
    try:
        c = taxonomy.class_ref(ref)
        if not 0 <= c < len(taxonomy.vocabulary):
            raise KeyError(f"class index {c} is outside 0..{len(taxonomy.vocabulary) - 1}")
    except KeyError as exc:
        raise UsageError(f"--class: {exc.args[0]}") from None
    names = taxonomy.superclasses_of(c)
    print(f"{taxonomy.class_label(c)}: " + (", ".join(names) if names else "no superclass (its own singleton)"))
    return 0


def cmd_rules_schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_oov_proposals(args: argparse.Namespace) -> int:
    from errortaxa.cli.oov_proposals import run_proposals

    return run_proposals(args)


def cmd_store_check(args: argparse.Namespace) -> int:
    """One line per finding on stdout, a summary on stderr; 0 clean, 1 findings."""
    try:
        from errortaxa.server.app import check_store
        from errortaxa.server.store import StoreError
    except ImportError as exc:
        raise UsageError(f"store check needs the server extra: {exc}") from None
    try:
        findings, serves = check_store(Path(args.dir))
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    for finding in findings:
        print(finding.line())
    print(f"{args.dir}: {len(findings)} finding(s); the server would serve {serves}", file=sys.stderr)
    return 1 if findings else 0
