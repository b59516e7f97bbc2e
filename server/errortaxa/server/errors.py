"""Service errors: a gRPC status code, a message and an ErrorDetail the client can read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

import grpc
from errortaxa.engine.language.problems import Problem, format_key_path
from errortaxa.v1 import service_pb2, taxonomy_pb2
from errortaxa.v1.codec import STATUS_DETAILS_KEY, encode_status


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
        status = encode_status(self.code.value[0], self.message, self.detail)
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, status),))
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
