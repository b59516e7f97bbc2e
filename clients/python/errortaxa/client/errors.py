"""Errors of the ErrorTaxa service as Python exceptions, with the details the server sends."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from errortaxa.v1 import taxonomy_pb2
from errortaxa.v1.codec import STATUS_DETAILS_KEY, decode_detail


@dataclass(frozen=True)
class Problem:
    """One problem of a taxonomy document: where (file, line, key path) and what."""

    file: str
    line: int
    key_path: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" [{self.key_path}]" if self.key_path else ""
        return f"{where}{key}: {self.severity}: {self.message}"

    @classmethod
    def from_proto(cls, msg: taxonomy_pb2.Problem) -> Problem:
        severity = "warning" if msg.severity == taxonomy_pb2.SEVERITY_WARNING else "error"
        return cls(
            file=msg.file, line=msg.line, key_path=msg.key_path, message=msg.message, severity=severity
        )


class ErrorTaxaError(Exception):
    """A failed call. ``code`` is the gRPC status code; the other fields come from the server's
    ErrorDetail when it sent one: ``field`` (request field at fault), ``sample_index`` (first bad
    sample of the request), ``row`` (dataset row), ``problems`` (taxonomy problems), ``reason``."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        field: str = "",
        sample_index: int | None = None,
        row: int | None = None,
        problems: Iterable[Problem] = (),
        reason: str = "",
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.sample_index = sample_index
        self.row = row
        self.problems = list(problems)
        self.reason = reason


class InvalidArgument(ErrorTaxaError):
    """INVALID_ARGUMENT: a malformed request or a taxonomy that does not compile."""


class NotFound(ErrorTaxaError):
    """NOT_FOUND: unknown taxonomy, version, dataset or image."""


class AlreadyExists(ErrorTaxaError):
    """ALREADY_EXISTS: that taxonomy name and version are stored with other content."""


class FailedPrecondition(ErrorTaxaError):
    """FAILED_PRECONDITION: e.g. deleting the active version."""


class Unauthenticated(ErrorTaxaError):
    """UNAUTHENTICATED: no token, or an unknown one."""


class PermissionDenied(ErrorTaxaError):
    """PERMISSION_DENIED: an admin call with a read token."""


class ResourceExhausted(ErrorTaxaError):
    """RESOURCE_EXHAUSTED: message or batch too large, or too many concurrent calls."""


class Unavailable(ErrorTaxaError):
    """UNAVAILABLE: the server cannot be reached or is draining (retried by the client)."""


class DeadlineExceeded(ErrorTaxaError):
    """DEADLINE_EXCEEDED: the call ran past its deadline."""


_BY_CODE: dict[grpc.StatusCode, type[ErrorTaxaError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def _metadata_items(metadata: Any) -> list[tuple[str, Any]]:
    if metadata is None:
        return []
    return [(item[0], item[1]) for item in metadata]


def make_error(code: grpc.StatusCode, message: str, trailing_metadata: Any = None) -> ErrorTaxaError:
    """Build the typed exception for a status code, message and trailing metadata."""
    cls = _BY_CODE.get(code, ErrorTaxaError)
    detail = None
    for key, value in _metadata_items(trailing_metadata):
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            detail = decode_detail(value)
    if detail is None:
        return cls(code, message)
    return cls(
        code,
        message,
        field=detail.field,
        sample_index=detail.sample_index if detail.HasField("sample_index") else None,
        row=detail.row if detail.HasField("row") else None,
        problems=[Problem.from_proto(p) for p in detail.problems],
        reason=detail.reason,
    )


def from_rpc_error(error: grpc.RpcError) -> ErrorTaxaError:
    """Convert a grpc.RpcError (sync or aio) into the typed exception."""
    code_fn = getattr(error, "code", None)
    code = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    details_fn = getattr(error, "details", None)
    message = (details_fn() if callable(details_fn) else None) or str(error)
    trailing_fn = getattr(error, "trailing_metadata", None)
    trailing = trailing_fn() if callable(trailing_fn) else None
    return make_error(code or grpc.StatusCode.UNKNOWN, message, trailing)


__all__ = [
    "AlreadyExists",
    "DeadlineExceeded",
    "ErrorTaxaError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Problem",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
    "make_error",
]
