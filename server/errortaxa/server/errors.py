"""Service errors: a gRPC status code, a message and an ErrorDetail the client can read.

Every kind of error (errortaxa.engine.errors) has its status code (:data:`STATUS_OF`). A
:class:`ServiceError` is the error tree's group of errors raised below a handler with their status
already chosen: ``ServiceError(code, message, ...)`` makes the member of the code's kind
(``ServiceError(StatusCode.NOT_FOUND, ...)`` is a :class:`ServiceNotFound`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

import grpc
from errortaxa.engine.errors import (
    KINDS,
    AlreadyExists,
    DeadlineExceeded,
    ErrorTaxaError,
    FailedPrecondition,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    format_key_path,
    kind_of,
)
from errortaxa.engine.language.problems import Problem, TaxonomyError
from errortaxa.v1 import service_pb2, taxonomy_pb2
from errortaxa.v1.codec import STATUS_DETAILS_KEY, encode_status

STATUS_OF: dict[type[ErrorTaxaError], grpc.StatusCode] = {kind: grpc.StatusCode[kind.status] for kind in KINDS}

MAX_SHOWN = 80  # characters of a user-supplied string an error repeats
MAX_MESSAGE = 1024  # characters of an error message
MAX_DETAILS = 4096  # bytes of the encoded details (trailing metadata; base64 on the wire, limit 8 KiB)


def shown(text: str) -> str:
    """A user-supplied string as errors repeat it: at most MAX_SHOWN characters, quoted."""
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...")


class ServiceError(ErrorTaxaError):
    """Raised anywhere below a handler; the handler turns it into the call's status
    (:attr:`status_code`, its kind's); the string is the message, the reason ``detail.reason``."""

    @classmethod
    def _concrete(cls, *args: Any, **kwargs: Any) -> type[ErrorTaxaError]:
        if cls is not ServiceError:
            return super()._concrete(*args, **kwargs)
        code = args[0] if args else kwargs.get("code")
        if code not in _SERVICE_ERRORS:
            raise TypeError(f"ServiceError is a group: its status code {code!r} names none of its members")
        return _SERVICE_ERRORS[code]

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        field: str = "",
        sample_index: int | None = None,
        row: int | None = None,
        problems: Iterable[taxonomy_pb2.Problem] = (),
        reason: str = "",
    ) -> None:
        message = message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."
        super().__init__(message)
        self.message = message
        self.detail = service_pb2.ErrorDetail(field=field, problems=list(problems), reason=reason)
        if sample_index is not None:
            self.detail.sample_index = sample_index
        if row is not None:
            self.detail.row = row

    @property
    def status_code(self) -> grpc.StatusCode:
        return grpc.StatusCode[self.status]

    def abort(self, context: grpc.ServicerContext) -> NoReturn:
        """End the call with this error (status code, message, ErrorDetail in trailing metadata)."""
        blob = encode_status(self.status_code.value[0], self.message, self.detail)
        while len(blob) > MAX_DETAILS and self.detail.problems:  # keep the first problems that fit
            del self.detail.problems[max(len(self.detail.problems) // 2, 1) - 1:]
            blob = encode_status(self.status_code.value[0], self.message, self.detail)
        if len(blob) > MAX_DETAILS:
            detail = service_pb2.ErrorDetail(reason=self.detail.reason)
            blob = encode_status(self.status_code.value[0], self.message[:200], detail)
        kept = tuple(item for item in (context.trailing_metadata() or ()) if item[0] != STATUS_DETAILS_KEY)
        context.set_trailing_metadata((*kept, (STATUS_DETAILS_KEY, blob)))
        context.abort(self.status_code, self.message)
        raise AssertionError("unreachable")  # context.abort raises


class ServiceInvalidArgument(ServiceError, InvalidInput):
    """INVALID_ARGUMENT, chosen below a handler."""


class ServiceNotFound(ServiceError, NotFound):
    """NOT_FOUND, chosen below a handler."""


class ServiceFailedPrecondition(ServiceError, FailedPrecondition):
    """FAILED_PRECONDITION, chosen below a handler."""


class ServiceResourceExhausted(ServiceError, LimitExceeded):
    """RESOURCE_EXHAUSTED, chosen below a handler."""


class ServiceAlreadyExists(ServiceError, AlreadyExists):
    """ALREADY_EXISTS, chosen below a handler."""


class ServiceUnavailable(ServiceError, Unavailable):
    """UNAVAILABLE, chosen below a handler."""


class ServicePermissionDenied(ServiceError, PermissionDenied):
    """PERMISSION_DENIED, chosen below a handler."""


class ServiceUnauthenticated(ServiceError, Unauthenticated):
    """UNAUTHENTICATED, chosen below a handler."""


class ServiceDeadlineExceeded(ServiceError, DeadlineExceeded):
    """DEADLINE_EXCEEDED, chosen below a handler."""


_SERVICE_ERRORS: dict[grpc.StatusCode, type[ServiceError]] = {
    grpc.StatusCode[c.status]: c for c in (
        ServiceInvalidArgument, ServiceNotFound, ServiceFailedPrecondition, ServiceResourceExhausted,
        ServiceAlreadyExists, ServiceUnavailable, ServicePermissionDenied, ServiceUnauthenticated,
        ServiceDeadlineExceeded)}


def from_error(exc: ErrorTaxaError, *, field: str | None = None, message: str | None = None) -> ServiceError:
    """The call's status for an engine error, by its kind (:data:`STATUS_OF`); the details carry its
    location (``field`` replaces the location's field or key path: the request field it came
    from), its ``code`` as the reason and a taxonomy error's problems."""
    where = exc.location
    name = field if field is not None else where.field or format_key_path(where.key_path)
    problems = [problem_proto(p) for p in exc.problems] if isinstance(exc, TaxonomyError) else []
    return ServiceError(STATUS_OF[kind_of(exc)], message if message is not None else str(exc), field=name,
                        sample_index=where.sample, row=None if where.record is None else where.record - 1,
                        problems=problems, reason=exc.code)


class BatchTooLarge(LimitExceeded):
    """More samples in one request than the server takes."""

    code = "BATCH_TOO_LARGE"


def invalid(message: str, *, field: str, reason: str, sample_index: int | None = None,
            row: int | None = None) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message, field=field, reason=reason,
                        sample_index=sample_index, row=row)


def not_found(message: str, *, field: str, **kwargs: Any) -> ServiceError:
    return ServiceError(grpc.StatusCode.NOT_FOUND, message, field=field, reason="NOT_FOUND", **kwargs)


def problem_proto(problem: Problem) -> taxonomy_pb2.Problem:
    """An engine Problem as the wire message."""
    severity = taxonomy_pb2.SEVERITY_WARNING if problem.severity == "warning" else taxonomy_pb2.SEVERITY_ERROR
    return taxonomy_pb2.Problem(
        file=problem.file,
        line=problem.line or 0,
        key_path=format_key_path(problem.key_path),
        message=problem.message,
        severity=severity,
    )
