"""Service errors: a gRPC status code, a message and an ErrorDetail the client can read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

import grpc
from errortaxa.client.errors import STATUS_DETAILS_KEY, encode_status
from errortaxa.engine.language.problems import Problem, format_key_path
from errortaxa.v1 import service_pb2, taxonomy_pb2

MAX_SHOWN = 80  # characters of a user-supplied string an error repeats
MAX_MESSAGE = 1024  # characters of an error message
MAX_DETAILS = 4096  # bytes of the encoded details (trailing metadata; base64 on the wire, limit 8 KiB)


def shown(text: str) -> str:
    """A user-supplied string as errors repeat it: at most MAX_SHOWN characters, quoted."""
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...")


class ServiceError(Exception):
    """Raised anywhere below a handler; the handler turns it into the call's status."""

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
        self.code = code
        self.message = message
        self.detail = service_pb2.ErrorDetail(field=field, problems=list(problems), reason=reason)
        if sample_index is not None:
            self.detail.sample_index = sample_index
        if row is not None:
            self.detail.row = row

    def abort(self, context: grpc.ServicerContext) -> NoReturn:
        """End the call with this error (status code, message, ErrorDetail in trailing metadata)."""
        blob = encode_status(self.code, self.message, self.detail)
        while len(blob) > MAX_DETAILS and self.detail.problems:  # keep the first problems that fit
            del self.detail.problems[max(len(self.detail.problems) // 2, 1) - 1:]
            blob = encode_status(self.code, self.message, self.detail)
        if len(blob) > MAX_DETAILS:
            blob = encode_status(self.code, self.message[:200], service_pb2.ErrorDetail(reason=self.detail.reason))
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, blob),))
        context.abort(self.code, self.message)
        raise AssertionError("unreachable")  # context.abort raises


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
