"""The one error tree of the engine and the applications: one base class with a location, and
the kinds, by what went wrong.

Every error the project raises (engine, providers, CLI, studies, server; the standalone client
keeps its own small tree) derives from :class:`ErrorTaxaError` through exactly one of the
:data:`KINDS`: :class:`InvalidInput`, :class:`NotFound`, :class:`FailedPrecondition`,
:class:`LimitExceeded`, :class:`AlreadyExists`, :class:`Unavailable`, and the server's
:class:`PermissionDenied`, :class:`Unauthenticated` and :class:`DeadlineExceeded`. Applications
map errors by these types (the CLI to exit status 2 and one line, the server to a gRPC status code
with the location as field details), never by message text. ``code`` is a machine-readable reason
(the server's ``ErrorDetail.reason``); a kind's ``status`` names its gRPC status code.

A class without a kind is a *group* (``ErrorTaxaError`` itself, ``TaxonomyError``,
``ProviderError``, ``ServiceError``, ...): something to catch, never raised as it is. Making one
is a TypeError, unless the group names the kind's class to make (:meth:`ErrorTaxaError._concrete`):
``TaxonomyError(problems)`` is an ``InvalidTaxonomy``. Builtin mixins stay where their classes say
so: every :class:`InvalidInput` is a ValueError, the OOV provider's missing weights a
FileNotFoundError.
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
    """A user-fixable error: ``reason`` (what is wrong) at ``location``; its string is one line.
    Never raised itself: raise one of the kinds (or a class deriving from one)."""

    code: ClassVar[str] = "INVALID"
    #: the gRPC status code's name of a kind (the server's and the CLI's mapping derive from it)
    status: ClassVar[str] = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return super().__new__(cls._concrete(*args, **kwargs), *args)

    @classmethod
    def _concrete(cls, *args: Any, **kwargs: Any) -> type[ErrorTaxaError]:
        """The class an error made as ``cls(*args, **kwargs)`` gets: ``cls`` when it has its kind;
        a group may override this to pick one of its members."""
        if kind_of_class(cls) is None:
            raise TypeError(f"{cls.__name__} is a group of errors without a kind of its own: raise one of its kinds")
        return cls

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
    status = "INVALID_ARGUMENT"


class NotFound(ErrorTaxaError):
    """Something named does not exist (gRPC NOT_FOUND)."""

    code = "NOT_FOUND"
    status = "NOT_FOUND"


class FailedPrecondition(ErrorTaxaError):
    """The input is well formed but what it needs is not there (gRPC FAILED_PRECONDITION)."""

    code = "FAILED_PRECONDITION"
    status = "FAILED_PRECONDITION"


class LimitExceeded(ErrorTaxaError):
    """The input is larger than a configured limit (gRPC RESOURCE_EXHAUSTED)."""

    code = "LIMIT_EXCEEDED"
    status = "RESOURCE_EXHAUSTED"


class AlreadyExists(ErrorTaxaError):
    """What is to be created exists already, with other content (gRPC ALREADY_EXISTS)."""

    code = "ALREADY_EXISTS"
    status = "ALREADY_EXISTS"


class Unavailable(ErrorTaxaError):
    """The service cannot take the call now, e.g. while it shuts down; retry, maybe elsewhere (gRPC UNAVAILABLE)."""

    code = "UNAVAILABLE"
    status = "UNAVAILABLE"


class PermissionDenied(ErrorTaxaError):
    """The caller may not do this (gRPC PERMISSION_DENIED); raised by the server."""

    code = "PERMISSION_DENIED"
    status = "PERMISSION_DENIED"


class Unauthenticated(ErrorTaxaError):
    """The caller did not say who it is, or not validly (gRPC UNAUTHENTICATED); raised by the server."""

    code = "UNAUTHENTICATED"
    status = "UNAUTHENTICATED"


class DeadlineExceeded(ErrorTaxaError):
    """Something took longer than it may, e.g. a stream idle too long (gRPC DEADLINE_EXCEEDED); raised by the server."""

    code = "DEADLINE_EXCEEDED"
    status = "DEADLINE_EXCEEDED"


class MissingExtra(FailedPrecondition):
    """Something needs an optional extra that is not installed: ``'x.parquet' needs the parquet
    extra: pip install 'errortaxa[parquet]'`` (the CLI prints it after ``errortaxa: error:``; a
    command, ``'serve' needs the serve extra``)."""

    code = "MISSING_EXTRA"

    def __init__(self, what: str, extra: str) -> None:
        self.what, self.extra = what, extra
        super().__init__(f"'{what}' needs the {extra} extra: pip install 'errortaxa[{extra}]'")


KINDS: tuple[type[ErrorTaxaError], ...] = (InvalidInput, NotFound, FailedPrecondition, LimitExceeded, AlreadyExists,
                                          Unavailable, PermissionDenied, Unauthenticated, DeadlineExceeded)


def kinds_of_class(cls: type[BaseException]) -> list[type[ErrorTaxaError]]:
    """The kinds among a class's bases (one for every error that is raised; none for a group)."""
    return [k for k in cls.__mro__ if k in KINDS]


def kind_of_class(cls: type[BaseException]) -> type[ErrorTaxaError] | None:
    """The kind of an error class (None: a group, or a class outside the tree)."""
    kinds = kinds_of_class(cls)
    if len(kinds) > 1:
        raise TypeError(f"{cls.__name__} has several kinds: {', '.join(k.__name__ for k in kinds)}")
    return kinds[0] if kinds else None


def kind_of(error: ErrorTaxaError) -> type[ErrorTaxaError]:
    """The kind of an error (its one kind among :data:`KINDS`)."""
    kind = kind_of_class(type(error))
    assert kind is not None, "a group is never made (ErrorTaxaError.__new__)"
    return kind
