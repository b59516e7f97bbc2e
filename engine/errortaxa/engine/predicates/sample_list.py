"""in_sample_list: the image is named in a sample_list resource (not evaluated without the list or
without image names)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from errortaxa.engine.language.fields import Identifier, Strict
from errortaxa.engine.language.problems import KeyPath
from errortaxa.engine.predicates.base import Compiling, Context, Node, Outcome, SampleEntry
from errortaxa.engine.samples import IndexedNames


class InSampleList(Strict):
    in_sample_list: Identifier


@dataclass
class InSampleListNode(Node):
    name: str
    images: frozenset[str] | None
    missing_reason: str | None = None
    # the membership of every name of the last base list seen through IndexedNames
    _listed: tuple[Sequence[str], np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    def eval(self, ctx: Context, rows: np.ndarray) -> Outcome:
        n = rows.shape[0]
        names = ctx.batch.images
        reason = self.missing_reason or (None if names is not None else "the samples carry no image names")
        if reason is not None or self.images is None or names is None:
            return Outcome.unknown(n, ctx.reason_code(f"sample list '{self.name}': {reason}"))
        if isinstance(names, IndexedNames):  # each name of the base list is looked up once
            cached = self._listed
            if cached is None or cached[0] is not names.base:
                listed = np.fromiter((name in self.images for name in names.base), bool, count=len(names.base))
                cached = self._listed = (names.base, listed)
            return Outcome.of(cached[1][names.picks[rows]])
        hits = map(self.images.__contains__, map(names.__getitem__, rows.tolist()))
        return Outcome.of(np.fromiter(hits, bool, count=n))

    def describe(self) -> str:
        return f"image in sample list '{self.name}'"

    def can_be_unknown(self) -> bool:
        return True


def _compile(pred: InSampleList, ctx: Compiling, path: KeyPath) -> Node:
    if pred.in_sample_list not in ctx.sample_lists:
        ctx.error((*path, "in_sample_list"), f"no sample_list resource named '{pred.in_sample_list}'")
        return InSampleListNode(pred.in_sample_list, None, "unknown sample list")
    images, missing = ctx.sample_lists[pred.in_sample_list]
    return InSampleListNode(pred.in_sample_list, images, missing)


ENTRIES = [SampleEntry("in_sample_list", InSampleList, _compile)]
