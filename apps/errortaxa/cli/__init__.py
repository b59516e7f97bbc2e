"""The ``errortaxa`` command line.  Bad input ends in one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from errortaxa.cli.commands import (
    cmd_classify,
    cmd_oov_proposals,
    cmd_rules_explain,
    cmd_rules_schema,
    cmd_rules_show,
    cmd_rules_test,
    cmd_rules_validate,
    cmd_store_check,
)
from errortaxa.cli.errors import user_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errortaxa", description="Explain why an ImageNet classifier is wrong, with YAML rules."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="classify every prediction of INPUT into an error category")
    p.add_argument("input", help="JSONL records, or .npz top-1 / logits over the validation images")
    p.add_argument("--taxonomy", help="taxonomy YAML file or built-in name (default: the embedded default)")
    p.add_argument("--output", help="write one JSON record per input record here (default: stdout)")
    p.add_argument("--summary", help="write the summary statistics (JSON) here")
    p.add_argument("--labels", help="for .npz input: the multi-label CSV or a ReaL json")
    p.add_argument("--server", help="classify on an ErrorTaxa server HOST:PORT instead of locally")
    p.add_argument("--token", help="API token for --server (or $ERRORTAXA_TOKEN)")
    p.add_argument("--oov-config", help="JSON/YAML config of the OOV provider (model, checkpoint, index)")
    p.set_defaults(func=cmd_classify)

    rules = sub.add_parser("rules", help="validate, test, explain and inspect taxonomies")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    p = rsub.add_parser("validate", help="compile a taxonomy and list every problem")
    p.add_argument("file")
    p.set_defaults(func=cmd_rules_validate)
    p = rsub.add_parser("test", help="run the expected cases written beside the rules")
    p.add_argument("file")
    p.set_defaults(func=cmd_rules_test)
    p = rsub.add_parser("explain", help="every rule tried on one record, and why it held or failed")
    p.add_argument("file")
    p.add_argument("--record", required=True, help='a JSON record: {"target": 1, "labels": [1], "pred": 2}')
    p.add_argument("--json", action="store_true", help="print the trace as JSON")
    p.set_defaults(func=cmd_rules_explain)
    p = rsub.add_parser("show", help="the members of a superclass, or the superclasses of a class")
    p.add_argument("file")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--superclass", help="superclass name")
    group.add_argument("--class", dest="class_", help="class index, wnid or synset name")
    p.set_defaults(func=cmd_rules_show)
    try:
        from errortaxa.study.cli import add_diff_arguments
    except ImportError:  # the study extra is not installed
        pass
    else:
        p = rsub.add_parser("diff", help="categories of two taxonomies on the same input, as a confusion matrix")
        add_diff_arguments(p)
    p = rsub.add_parser("schema", help="print the JSON Schema of taxonomy files (for editors)")
    p.set_defaults(func=cmd_rules_schema)

    # listed for --help; main() hands `serve` and its flags to the server before parsing
    sub.add_parser("serve", help="run the gRPC service (see docs/SERVICE.md)", add_help=False)

    store = sub.add_parser("store", help="the server's taxonomy store")
    ssub = store.add_subparsers(dest="store_command", required=True)
    p = ssub.add_parser("check", help="report damaged or foreign files and unfinished changes (changes nothing); "
                                      "exit 1 when there are any")
    p.add_argument("dir", help="the store directory (the server's --store)")
    p.set_defaults(func=cmd_store_check)

    oov = sub.add_parser("oov", help="the open-world (OOV) provider's tools")
    osub = oov.add_subparsers(dest="oov_command", required=True)
    p = osub.add_parser("proposals", help="the WordNet prompts the OOV test scores for (pred, target)")
    p.add_argument("--pred", type=int)
    p.add_argument("--target", type=int)
    p.add_argument("--pairs", help='JSONL lines {"pred": INT, "target": INT}; one JSON list per line out')
    p.add_argument("--taxonomy", help="taxonomy whose superclasses are used (default: the embedded default)")
    p.set_defaults(func=cmd_oov_proposals)
    _add_extensions(sub)
    return parser


def _add_extensions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands of optional parts (OOV indexing, studies) register themselves here."""
    for module in ("errortaxa.providers.oov.cli", "errortaxa.study.cli"):
        try:
            register = __import__(module, fromlist=["register"]).register
        except ImportError:
            continue
        register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:  # the server parses its own flags (docs/SERVICE.md)
        from errortaxa.server import main as serve_main

        return int(serve_main(argv[1:]))
    args = build_parser().parse_args(argv)
    with user_errors() as status:
        return int(args.func(args) or 0)
    return status.code


if __name__ == "__main__":
    sys.exit(main())
