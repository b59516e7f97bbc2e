"""The ``classify`` and ``rules`` subcommands of ``errortaxa``: thin shells over the engine and the providers."""

from __future__ import annotations

import argparse
import json
import sys

from errortaxa.cli.common import CHUNK, dumps, output_stream, read_input, taxonomy_from
from errortaxa.cli.errors import UsageError
from errortaxa.cli.providers import providers_from
from errortaxa.engine import (
    Decisions,
    SampleBatch,
    compile_path,
    evaluate,
    explain,
    run_cases,
    summarize,
)
from errortaxa.engine.language.schema import json_schema
from errortaxa.engine.providers import registry
from tqdm import tqdm


def classify_local(args: argparse.Namespace) -> int:
    """``errortaxa classify`` decided here (``--server``: errortaxa.cli.remote)."""
    taxonomy = taxonomy_from(args.taxonomy)
    batch, skipped = read_input(args.input, args.labels, len(taxonomy.vocabulary))
    if not len(batch):
        raise UsageError(f"{args.input}: no samples to classify" + (f" ({skipped} without labels)" if skipped else ""))
    batch.validate(len(taxonomy.vocabulary))
    providers = providers_from(args, taxonomy)
    parts = []
    with output_stream(args.output) as out, tqdm(
        total=len(batch), unit="pred", disable=None if len(batch) > CHUNK else True, file=sys.stderr
    ) as bar:
        for start in range(0, len(batch), CHUNK):
            part = batch.slice(start, min(start + CHUNK, len(batch)))
            decisions = evaluate(taxonomy, part, providers, validate=False)
            out.write("".join(dumps(r) + "\n" for r in decisions.records()))
            parts.append(decisions)
            bar.update(len(part))
    if args.summary:
        decisions = Decisions.concatenate(parts, batch) if parts else evaluate(taxonomy, batch, validate=False)
        with output_stream(args.summary) as out:
            json.dump(summarize(taxonomy, decisions, skipped=skipped), out, indent=2)
            out.write("\n")
    if skipped:
        print(f"errortaxa: {skipped} image(s) without labels were skipped", file=sys.stderr)
    return 0


def cmd_rules_validate(args: argparse.Namespace) -> int:
    taxonomy = compile_path(args.file)
    for warning in taxonomy.warnings:
        print(warning, file=sys.stderr)
    installed = registry.names()
    for name in sorted(taxonomy.providers_needed - set(installed)):
        print(f"{args.file}: warning: the rules ask feature provider '{name}', which is not installed here "
              f"(installed: {', '.join(installed) or 'none'}); its rules are not evaluated", file=sys.stderr)
    rules = sum(len(axis.rules) for axis in taxonomy.axes.values())
    print(f"ok: {taxonomy.name} {taxonomy.version} ({taxonomy.content_hash}): {len(taxonomy.axes)} axis(es), "
          f"{rules} rules, {len(taxonomy.superclass_names)} superclasses, {len(taxonomy.warnings)} warning(s)")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    taxonomy = compile_path(args.file)
    results = run_cases(taxonomy)
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
    unknown = sorted(set(record) - {"target", "pred", "labels", "problematic", "image", "id"})
    if unknown:
        raise UsageError(f"--record: unknown field '{unknown[0]}' (fields: target, labels, pred, problematic, "
                         "image, id)")
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
    explanation = explain(taxonomy, batch, 0)
    traces, decided = explanation.traces, explanation.record()
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
