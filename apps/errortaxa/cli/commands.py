"""The ``classify`` and ``rules`` subcommands of ``errortaxa``: thin shells over the engine and the providers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from errortaxa.cli.common import CHUNK, compile_file, dumps, note_skipped, read_input, read_options, taxonomy_from
from errortaxa.cli.errors import UsageError
from errortaxa.cli.providers import providers_from
from errortaxa.cli.rules_report import (
    case_status,
    cases_json,
    cases_junit,
    counts,
    invalid_json,
    invalid_junit,
    mismatch,
    skip_reason,
    validation_json,
)
from errortaxa.cli.terminal import colour_enabled, paint, progress_enabled
from errortaxa.engine import (
    Decisions,
    SampleBatch,
    TaxonomyError,
    evaluate,
    explain,
    run_cases,
    summarize,
)
from errortaxa.engine.language.schema import json_schema
from errortaxa.engine.outputs import STDIO, open_text
from errortaxa.engine.providers import registry
from tqdm import tqdm


def classify_local(args: argparse.Namespace) -> int:
    """``errortaxa classify`` decided here (``--server``: errortaxa.cli.remote)."""
    taxonomy = taxonomy_from(args.taxonomy)
    batch, skipped = read_input(args.input, args.labels, read_options(taxonomy, args.columns))
    if not len(batch):
        raise UsageError(f"{args.input}: no samples to classify" + (f" ({skipped} without labels)" if skipped else ""))
    batch.validate(len(taxonomy.vocabulary))
    providers = providers_from(args, taxonomy)
    parts = []
    show = len(batch) > CHUNK and progress_enabled(args.quiet, sys.stderr)
    with open_text(args.output or STDIO) as out, tqdm(
        total=len(batch), unit="pred", disable=not show, file=sys.stderr
    ) as bar:
        for start in range(0, len(batch), CHUNK):
            part = batch.slice(start, min(start + CHUNK, len(batch)))
            decisions = evaluate(taxonomy, part, providers, validate=False)
            out.write("".join(dumps(r) + "\n" for r in decisions.records()))
            parts.append(decisions)
            bar.update(len(part))
    if args.summary:
        decisions = Decisions.concatenate(parts, batch) if parts else evaluate(taxonomy, batch, validate=False)
        with open_text(args.summary) as out:
            json.dump(summarize(taxonomy, decisions, skipped=skipped), out, indent=2)
            out.write("\n")
    note_skipped(skipped, args.quiet)
    return 0


def cmd_rules_validate(args: argparse.Namespace) -> int:
    try:
        taxonomy = compile_file(args.file, strict=args.strict)
    except TaxonomyError as exc:
        if args.format == "text":
            raise
        print(json.dumps(invalid_json(args.file, exc.problems), indent=2))
        return 2
    installed = registry.names()
    missing = sorted(taxonomy.providers_needed - set(installed))
    if args.format == "json":
        print(json.dumps(validation_json(args.file, taxonomy, missing), indent=2))
        return 0
    for warning in taxonomy.warnings:  # a provider that is not installed here among them, at its line
        print(warning, file=sys.stderr)
    rules = sum(len(axis.rules) for axis in taxonomy.axes.values())
    print(f"ok: {taxonomy.name} {taxonomy.version} ({taxonomy.content_hash}): {len(taxonomy.axes)} axis(es), "
          f"{rules} rules, {len(taxonomy.superclass_names)} superclasses, {len(taxonomy.warnings)} warning(s)")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    """Exit status 0: every checkable case passed; 1: a case failed; 2: the taxonomy is invalid."""
    start = time.perf_counter()
    try:
        taxonomy = compile_file(args.file)
    except TaxonomyError as exc:
        if args.format == "json":
            print(json.dumps(invalid_json(args.file, exc.problems), indent=2))
        elif args.format == "junit":
            print(invalid_junit(args.file, exc.problems, time.perf_counter() - start), end="")
        else:
            raise
        return 2
    results = run_cases(taxonomy, providers_from(args, taxonomy))
    n = counts(results)
    if args.format == "json":
        print(json.dumps(cases_json(args.file, taxonomy, results), indent=2))
    elif args.format == "junit":
        print(cases_junit(args.file, taxonomy, results, time.perf_counter() - start), end="")
    else:
        colour = colour_enabled(sys.stdout)
        for r in results:
            where = f"{r.file}:{r.line}" if r.line else r.file
            status = case_status(r)
            if status == "passed":
                print(f"{paint('PASS', 'green', colour)} {r.name}")
            elif status == "skipped":
                print(f"{paint('SKIP', 'yellow', colour)} {r.name} ({where}): {skip_reason(r)}")
            else:
                print(f"{paint('FAIL', 'red', colour)} {r.name} ({where}): {mismatch(r)}")
        print(f"{n['passed']} passed, {n['failed']} failed, {n['skipped']} not checked")
    return 1 if n["failed"] else 0


def cmd_completion(args: argparse.Namespace) -> int:
    """The completion script of the whole parser, the provider-contributed commands included;
    ``serve``'s options come from the server's own parser where the serve extra is installed."""
    from errortaxa.cli.completion import SCRIPTS

    replace = {}
    try:
        from errortaxa.server.config import build_parser as serve_parser
    except ModuleNotFoundError:  # no serve extra: `serve` completes as a bare word
        pass
    else:
        replace["serve"] = serve_parser()
    print(SCRIPTS[args.shell](args.root_parser, replace), end="")
    return 0


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
    taxonomy = compile_file(args.file)
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
    taxonomy = compile_file(args.file)
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
    print(json.dumps(json_schema(registry.declarations()), indent=2))
    return 0


def cmd_store_check(args: argparse.Namespace) -> int:
    """One line per finding on stdout, a summary on stderr; 0 clean, 1 findings."""
    from errortaxa.server.app import check_store
    from errortaxa.server.config import is_database_url
    from errortaxa.server.pgstore import redacted
    from errortaxa.server.store import StoreError

    url = is_database_url(args.dir)
    try:
        findings, serves = check_store(args.dir if url else Path(args.dir))
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    for finding in findings:
        print(finding.line())
    shown = redacted(args.dir) if url else args.dir
    print(f"{shown}: {len(findings)} finding(s); the server would serve {serves}", file=sys.stderr)
    return 1 if findings else 0


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """Copy a file store into PostgreSQL; a summary on stderr."""
    from errortaxa.server.config import is_database_url
    from errortaxa.server.migrate import migrate
    from errortaxa.server.pgstore import redacted
    from errortaxa.server.store import StoreError

    if not is_database_url(args.target):
        raise UsageError(f"TO: expected a postgresql:// URL, got {args.target!r}")
    if not Path(args.source).is_dir():
        raise UsageError(f"FROM: {args.source}: not a folder")
    try:
        copied = migrate(Path(args.source), args.target)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    print(f"{args.source} -> {redacted(args.target)}: copied {copied['versions']} version(s), "
          f"{copied['activations']} activation(s), {copied['audit']} audit record(s), {copied['datasets']} "
          "dataset(s)", file=sys.stderr)
    return 0
