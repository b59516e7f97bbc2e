"""``errortaxa oov proposals``: the WordNet prompts the OOV test scores (no torch needed)."""

from __future__ import annotations

import argparse
import json

from errortaxa.cli.commands import taxonomy_from
from errortaxa.cli.errors import UsageError
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.providers.oov.proposals import generate_many, proposals_json


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
                raise UsageError(f"{path} record {number}: invalid JSON: {exc.msg}") from None
            if not isinstance(record, dict):
                raise UsageError(f"{path} record {number}: must be a JSON object")
            values = []
            for field in ("pred", "target"):
                value = record.get(field)
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < num_classes:
                    message = f"field '{field}': must be a class id 0..{num_classes - 1}"
                    raise UsageError(f"{path} record {number}: {message}")
                values.append(value)
            pairs.append((values[0], values[1]))
    return pairs


def run_proposals(args: argparse.Namespace) -> int:
    taxonomy = taxonomy_from(args.taxonomy)
    n = len(taxonomy.vocabulary)
    if args.pairs:
        pairs = read_pairs(args.pairs, n)
    elif args.pred is not None and args.target is not None:
        for field, value in (("--pred", args.pred), ("--target", args.target)):
            if not 0 <= value < n:
                raise UsageError(f"{field}: class id {value} is outside 0..{n - 1}")
        pairs = [(args.pred, args.target)]
    else:
        raise UsageError("give --pred and --target, or --pairs FILE")
    lists = generate_many(pairs, wordnet=WordNet.load(), vocab=taxonomy.vocabulary,
                          same_superclass=taxonomy.same_superclass)
    for proposals in lists:
        print(json.dumps(proposals_json(proposals)))
    return 0
