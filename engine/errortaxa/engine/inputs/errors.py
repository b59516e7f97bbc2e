"""The readers' errors: one line naming the file, the record (or a place in it) and the field."""

from __future__ import annotations

import os

from errortaxa.engine.errors import ErrorTaxaError, FailedPrecondition, InvalidInput, Location, NotFound


class InputFileError(ErrorTaxaError):
    """The group of errors about one input file (no kind of its own: catch it, raise a member).
    ``record`` is the 1-based line of a line-oriented file or entry of a JSON array; ``where``
    replaces it where a record number is not enough (``key 'top1' row 3 (name)``)."""

    def __init__(self, path: str | os.PathLike[str], reason: str, *, record: int | None = None,
                 field: str | None = None, where: str | None = None) -> None:
        self.path = os.fspath(path)
        self.record = record
        super().__init__(reason, Location(file=self.path, record=record, field=field, where=where))


class InputError(InputFileError, InvalidInput):
    """A malformed input file, e.g. ``in.jsonl record 17: field 'pred': class id 1000 is outside
    0..999``."""

    code = "BAD_INPUT_FILE"


class InputNotFound(InputFileError, NotFound):
    """An input file that does not exist."""

    code = "NOT_FOUND"


class InputNeedsMore(InputFileError, FailedPrecondition):
    """A well-formed input that cannot be used without another (predictions without a label set,
    ReaL labels without the original validation labels)."""

    code = "FAILED_PRECONDITION"
