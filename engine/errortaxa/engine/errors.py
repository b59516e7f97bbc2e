"""The errors a user can fix: one base class with a location, four kinds by what went wrong.

Every error the engine raises for bad input derives from :class:`ErrorTaxaError` through one of
the kinds :class:`InvalidInput`, :class:`NotFound`, :class:`FailedPrecondition` and
:class:`LimitExceeded`. Applications map errors by these types (the CLI to exit status 2 and one
line, the server to a gRPC status code with the location as field details), never by message text.
``code`` is a machine-readable reason (the server's ``ErrorDetail.reason``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

KeyPath = tuple[str | int, ...]


def format_key_path(path: Sequence[str | int]) -> str:
    """``('axes', 'category', 'rules', 3, 'when')`` -> ``axes.category.rules[3].when``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Location:
    """Where an error is: a file with a line and key path (taxonomies), a file with a record
    (1-based line or entry) or a free-form place (``key 'top1' row 3``), a sample (0-based index of
    a batch); and the field."""

    file: str | None = None
    line: int | None = None
    key_path: KeyPath = ()
    record: int | None = None
    sample: int | None = None
    field: str | None = None
    where: str | None = None

    def __str__(self) -> str:
        """``in.jsonl record 17: field 'pred'``, ``sample 3: field 'labels'``, ``t.yaml:4: axes.x``."""
        head = (self.file or "") + (f":{self.line}" if self.line else "")
        place = self.where if self.where is not None else (
            f"record {self.record}" if self.record is not None else
            f"sample {self.sample}" if self.sample is not None else "")
        head = f"{head} {place}".strip()
        parts = [p for p in (head, format_key_path(self.key_path)) if p]
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ": ".join(parts)


class ErrorTaxaError(Exception):
    """A user-fixable error: ``reason`` (what is wrong) at ``location``; its string is one line."""

    code: ClassVar[str] = "INVALID"

    def __init__(self, reason: str, location: Location | None = None) -> None:
        self.reason = reason
        self.location = location if location is not None else Location()
        where = str(self.location)
        super().__init__(" ".join(f"{where}: {reason}".splitlines()) if where else " ".join(reason.splitlines()))

    @property
    def field(self) -> str | None:
        return self.location.field

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the state, not through ``__init__`` (errors cross process boundaries: Ray)."""
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[ErrorTaxaError], args: tuple[Any, ...], state: dict[str, Any]) -> ErrorTaxaError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidInput(ErrorTaxaError, ValueError):
    """The input itself is malformed (gRPC INVALID_ARGUMENT); also a ValueError."""

    code = "INVALID_INPUT"


class NotFound(ErrorTaxaError):
    """Something named does not exist (gRPC NOT_FOUND)."""

    code = "NOT_FOUND"


class FailedPrecondition(ErrorTaxaError):
    """The input is well formed but what it needs is not there (gRPC FAILED_PRECONDITION)."""

    code = "FAILED_PRECONDITION"


class LimitExceeded(ErrorTaxaError):
    """The input is larger than a configured limit (gRPC RESOURCE_EXHAUSTED)."""

    code = "LIMIT_EXCEEDED"


class MissingExtra(FailedPrecondition):
    """Something needs an optional extra that is not installed: ``'x.parquet' needs the parquet
    extra: pip install 'errortaxa[parquet]'`` (the CLI prints it after ``errortaxa: error:``)."""

    code = "MISSING_EXTRA"

    def __init__(self, what: str, extra: str) -> None:
        self.what, self.extra = what, extra
        super().__init__(f"'{what}' needs the {extra} extra: pip install 'errortaxa[{extra}]'")


KINDS: tuple[type[ErrorTaxaError], ...] = (InvalidInput, NotFound, FailedPrecondition, LimitExceeded)


def kind_of(error: ErrorTaxaError) -> type[ErrorTaxaError]:
    """The first of the four kinds in the error's class hierarchy (InvalidInput when none)."""
    return next((k for k in type(error).__mro__ if k in KINDS), InvalidInput)
