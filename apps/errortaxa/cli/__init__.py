"""The ``errortaxa`` command line.  Bad input ends in one line on stderr and exit status 2.

Conventions: ``--version``; ``-q/--quiet`` (before or after the subcommand: no progress bars or
notes on stderr, only results and errors); ``NO_COLOR`` turns colour off; ``-`` names standard
input or output; ``errortaxa completion bash|zsh`` prints a completion script. ``__version__`` is
the distribution's version (errortaxa.engine.version).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from errortaxa.cli.commands import (
    classify_local,
    cmd_completion,
    cmd_rules_explain,
    cmd_rules_schema,
    cmd_rules_show,
    cmd_rules_test,
    cmd_rules_validate,
    cmd_store_check,
    cmd_store_migrate,
)
from errortaxa.cli.common import COLUMNS_HELP, TAXONOMY_HELP, add_limit_option, configure_limits
from errortaxa.cli.errors import user_errors
from errortaxa.cli.explore import register as register_explore
from errortaxa.cli.extras import requires
from errortaxa.cli.providers import add_provider_options
from errortaxa.cli.study import add_diff_arguments
from errortaxa.cli.study import register as register_study
from errortaxa.engine import __version__
from errortaxa.engine.providers import registry

__all__ = ["__version__", "build_parser", "main"]

FORMATS = ("text", "json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errortaxa", description="Explain why an ImageNet classifier is wrong, with YAML rules."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="classify every prediction of INPUT into an error category")
    p.add_argument("input", help="predictions in any input format (README 'Inputs'; '-': standard input): JSONL "
                                 "samples, or with --labels: .npy / .npz / .pt, CSV / parquet tables, timm's "
                                 "inference outputs")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("--output", help="write one JSON record per input record here (default and '-': stdout)")
    p.add_argument("--summary", help="write the summary statistics (JSON) here")
    p.add_argument("--labels", help="the label set of predictions without labels of their own: the multi-label "
                                    "CSV, a ReaL json, a target list, an (image, label) table")
    p.add_argument("--columns", help=COLUMNS_HELP)
    p.add_argument("--server", help="classify on an ErrorTaxa server HOST:PORT instead of locally")
    p.add_argument("--token", help="API token for --server (or $ERRORTAXA_TOKEN)")
    add_provider_options(p)
    add_limit_option(p)
    p.set_defaults(func=cmd_classify)

    rules = sub.add_parser("rules", help="validate, test, explain and inspect taxonomies")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    p = rsub.add_parser("validate", help="compile a taxonomy and list every problem")
    p.add_argument("file")
    p.add_argument("--strict", action="store_true",
                   help="a feature provider that is not installed here is an error (default: a warning)")
    p.add_argument("--format", choices=FORMATS, default="text", help="text (default) or a JSON report on stdout")
    add_limit_option(p)
    p.set_defaults(func=cmd_rules_validate)
    p = rsub.add_parser("test", help="run the expected cases written beside the rules")
    p.add_argument("file")
    p.add_argument("--format", choices=(*FORMATS, "junit"), default="text",
                   help="text (default), a JSON report, or JUnit XML for CI systems, on stdout")
    add_provider_options(p, " (the cases its rules decide are checked instead of left open)")
    add_limit_option(p)
    p.set_defaults(func=cmd_rules_test)
    p = rsub.add_parser("explain", help="every rule tried on one record, and why it held or failed")
    p.add_argument("file")
    p.add_argument("--record", required=True, help='a JSON record: {"target": 1, "labels": [1], "pred": 2}')
    p.add_argument("--json", action="store_true", help="print the trace as JSON")
    add_limit_option(p)
    p.set_defaults(func=cmd_rules_explain)
    p = rsub.add_parser("show", help="the members of a superclass, or the superclasses of a class")
    p.add_argument("file")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--superclass", help="superclass name")
    group.add_argument("--class", dest="class_", help="class index, wnid or synset name")
    add_limit_option(p)
    p.set_defaults(func=cmd_rules_show)
    p = rsub.add_parser("diff", help="categories of two taxonomies on the same input, as a confusion matrix")
    add_diff_arguments(p)
    p = rsub.add_parser("schema", help="print the JSON Schema of taxonomy files (for editors), with the tests "
                                       "of the installed feature providers")
    p.set_defaults(func=cmd_rules_schema)

    # listed for --help; main() hands `serve` and its flags to the server before parsing
    sub.add_parser("serve", help="run the gRPC service (see docs/SERVICE.md)", add_help=False)

    store = sub.add_parser("store", help="the server's taxonomy store")
    ssub = store.add_subparsers(dest="store_command", required=True)
    p = ssub.add_parser("check", help="report damaged or foreign files and unfinished changes (changes nothing); "
                                      "exit 1 when there are any")
    p.add_argument("dir", help="the store (the server's --store): a directory or a postgresql:// URL")
    p.set_defaults(func=cmd_store_check, extra="serve")
    p = ssub.add_parser("migrate", help="copy a file store into a PostgreSQL store (versions, activation history, "
                                        "audit log, datasets), verifying content hashes; running it again copies "
                                        "nothing")
    p.add_argument("source", metavar="FROM", help="the file store directory")
    p.add_argument("target", metavar="TO", help="the PostgreSQL store: postgresql://USER@HOST[:PORT]/DB")
    p.set_defaults(func=cmd_store_migrate, extra="serve")

    for factory in registry.factories():
        factory.add_commands(sub)
    register_study(sub)
    register_explore(sub)
    p = sub.add_parser("completion", help='print a shell completion script: eval "$(errortaxa completion bash)"')
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(func=cmd_completion, root_parser=parser)
    _add_quiet(parser)
    return parser


QUIET_HELP = "no progress bars or notes on stderr; only results and errors"


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` after any subcommand too; unset there, it leaves the top level's value."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if sub.add_help and "--quiet" not in sub._option_string_actions:
                    sub.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                                     help=QUIET_HELP)
                _add_quiet(sub)


def cmd_classify(args: argparse.Namespace) -> int:
    if args.server:
        with requires("classify --server", "remote"):
            from errortaxa.cli.remote import classify_remote

            return classify_remote(args)
    return classify_local(args)


def _command(args: argparse.Namespace) -> str:
    """The subcommand's name as typed, e.g. "rules diff" (a nested one's dest ends in ``_command``)."""
    words = [args.command]
    words += [value for key, value in vars(args).items() if key.endswith("_command") and isinstance(value, str)]
    return " ".join(words)


def serve(argv: list[str]) -> int:
    """``errortaxa serve``: the server parses its own flags (docs/SERVICE.md)."""
    with user_errors() as status, requires("serve", "serve"):
        from errortaxa.server import main as serve_main
    if status.code:
        return status.code
    return int(serve_main(argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    args = build_parser().parse_args(argv)
    with user_errors() as status, requires(_command(args), getattr(args, "extra", None)):
        configure_limits(args)
        return int(args.func(args) or 0)
    return status.code


if __name__ == "__main__":
    sys.exit(main())
