"""``errortaxa classify --server HOST:PORT``: the same output as local mode, decided by a server."""

from __future__ import annotations

import argparse
import json
import os
import sys

from errortaxa.cli.common import CHUNK, dumps, note_skipped, read_input, read_options
from errortaxa.cli.errors import UsageError, remote_error
from errortaxa.cli.providers import provider_configs
from errortaxa.cli.terminal import progress_enabled
from errortaxa.client import Client, ErrorTaxaError
from errortaxa.engine.outputs import STDIO, open_text
from errortaxa.engine.providers import registry


def classify_remote(args: argparse.Namespace) -> int:
    if args.limit:
        raise UsageError("--limit applies to local mode; a server uses its own taxonomy limits")
    given = sorted(provider_configs(args))
    if given:
        raise UsageError(f"{registry.get(given[0]).config_option} applies to local mode; a server uses its own "
                         f"'{given[0]}' provider")
    batch, skipped = read_input(args.input, args.labels, read_options(None, args.columns))
    token = args.token or os.environ.get("ERRORTAXA_TOKEN")
    taxonomy = args.taxonomy
    if taxonomy is not None and os.path.isfile(taxonomy):
        raise UsageError("--taxonomy with --server names a taxonomy stored on the server (name or name@version); "
                         "upload a file with the client's put_taxonomy")
    show = len(batch) > CHUNK and progress_enabled(args.quiet, sys.stderr)
    try:
        with Client(args.server, token=token) as client, open_text(args.output or STDIO) as out:
            chunks = (batch.slice(s, min(s + CHUNK, len(batch))) for s in range(0, len(batch), CHUNK))
            for result in client.classify_stream(chunks, taxonomy=taxonomy, records=True, total=len(batch),
                                                 progress=show):
                out.write("".join(dumps(r) + "\n" for r in result.records))
            if args.summary:
                summary = client.classify(batch, taxonomy=taxonomy, summary=True).summary
                assert summary is not None
                data = dict(summary.data)
                data["skipped_without_labels"] = skipped
                with open_text(args.summary) as stream:
                    json.dump(data, stream, indent=2)
                    stream.write("\n")
    except ErrorTaxaError as exc:
        raise remote_error(args.server, exc.code.name, exc.message) from None
    note_skipped(skipped, args.quiet)
    return 0
