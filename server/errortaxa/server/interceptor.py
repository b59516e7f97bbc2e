"""One server interceptor for every call: its declaration (declarations.py; undeclared methods are
refused), token check, admission, metrics, call log, caller identity."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from errortaxa.server.admission import Admission
from errortaxa.server.auth import ANONYMOUS, Denied, Identity, Tokens
from errortaxa.server.declarations import COMPUTING, STREAM, declaration
from errortaxa.server.errors import ServiceError
from errortaxa.server.metrics import Call, Metrics

log = logging.getLogger("errortaxa.server.calls")
_local = threading.local()

Behavior = Callable[[Any, grpc.ServicerContext], Any]


def current_identity() -> Identity:
    """Who makes the call being handled on this thread (set by the interceptor)."""
    identity: Identity | None = getattr(_local, "identity", None)
    return identity if identity is not None else Identity(ANONYMOUS, "admin")


def _code_name(context: grpc.ServicerContext, failed: bool) -> str:
    code_fn = getattr(context, "code", None)
    code = code_fn() if callable(code_fn) else None
    if code is None and not context.is_active():
        return "CANCELLED"  # the client went away (cancelled, or its deadline passed)
    if code is None:
        return "UNKNOWN" if failed else "OK"
    return str(code.name) if isinstance(code, grpc.StatusCode) else str(code)


def _client_cancelled(context: grpc.ServicerContext) -> bool:
    """Whether the client cancelled a call that is over. grpc's public API cannot tell a cancelled
    call from a completed one once both are inactive, so this reads the call state grpc keeps."""
    state = getattr(context, "_state", None)
    return getattr(state, "client", None) == "cancelled"


class CallInterceptor(grpc.ServerInterceptor):
    def __init__(self, tokens: Tokens, metrics: Metrics, admission: Admission) -> None:
        self.tokens = tokens
        self.metrics = metrics
        self.admission = admission

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        service, _, name = method[1:].rpartition("/")
        call = (service, name, _kind(handler))
        declared = declaration(method)
        if declared is None:  # fail closed: whatever the token, and with no tokens configured
            self.metrics.undeclared_call(call)
            refusal = Denied(grpc.StatusCode.PERMISSION_DENIED,
                             f"{method} has no declaration (errortaxa/v1/options.proto): this server answers "
                             "no method it has not declared")
            return _rebuild(handler, lambda inner, streaming: self._deny(call, refusal))
        outcome = self.tokens.check(declared.authorization, method, details.invocation_metadata)
        if isinstance(outcome, Denied):
            return _rebuild(handler, lambda inner, streaming: self._deny(call, outcome))
        return _rebuild(handler, lambda inner, streaming: self._observe(
            call, outcome, self._admitted(declared.admission, outcome, inner), streaming))

    def _admitted(self, admission_class: str, identity: Identity, inner: Behavior) -> Behavior:
        """``inner`` behind the admission control its declaration names (see admission)."""
        admission = self.admission
        if admission_class == COMPUTING:
            def computing(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    with admission.call():
                        return inner(request, context)
                except ServiceError as exc:  # refused
                    exc.abort(context)

            return computing
        if admission_class == STREAM:
            by_token = self.tokens.enabled

            def streaming(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    with admission.stream(identity.name if by_token else context.peer()) as release:
                        context.add_callback(release)  # the slot is free once the call is over (a cancel too)
                        guarded = admission.requests(requests, context)
                        try:
                            yield from inner(guarded, context)
                        finally:
                            guarded.close()
                except ServiceError as exc:  # refused
                    exc.abort(context)

            return streaming
        return inner

    def _deny(self, call: Call, denied: Denied) -> Behavior:
        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            self.metrics.started(call)
            self.metrics.finished(call, denied.code.name, 0.0)
            log.info("call refused", extra={"method": call[1], "code": denied.code.name, "peer": context.peer()})
            context.abort(denied.code, denied.message)

        return behavior

    def _observe(self, call: Call, identity: Identity, inner: Behavior, streaming: bool) -> Behavior:
        metrics = self.metrics
        method = call[1]

        def finish(context: grpc.ServicerContext, start: float, failed: bool) -> None:
            code = _code_name(context, failed)
            seconds = time.perf_counter() - start
            metrics.finished(call, code, seconds)
            if code != "OK":
                log.info("call failed", extra={"method": method, "code": code, "caller": identity.name,
                                               "seconds": round(seconds, 6), "peer": context.peer()})
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("call", extra={"method": method, "code": code, "caller": identity.name,
                                         "seconds": round(seconds, 6)})

        if not streaming:
            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                _local.identity = identity
                metrics.started(call)
                start = time.perf_counter()
                failed = True
                try:
                    response = inner(request, context)
                    failed = False
                    return response
                finally:
                    _local.identity = None
                    finish(context, start, failed)

            return unary

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            _local.identity = identity
            metrics.started(call)
            start = time.perf_counter()
            failed = True
            try:
                yield from inner(request, context)
                failed = False
            finally:
                _local.identity = None
                if failed:
                    finish(context, start, failed)
                else:  # a client's cancel can end the requests like a half-close: count it when the call is over
                    if not context.add_callback(lambda: finish_ended(context, start)):
                        finish_ended(context, start)  # already over

        def finish_ended(context: grpc.ServicerContext, start: float) -> None:
            code = "CANCELLED" if _client_cancelled(context) else "OK"
            seconds = time.perf_counter() - start
            metrics.finished(call, code, seconds)
            if code != "OK":
                log.info("call failed", extra={"method": method, "code": code, "caller": identity.name,
                                               "seconds": round(seconds, 6), "peer": context.peer()})

        return stream


def _kind(handler: Any) -> str:
    """The grpc_type of a method handler: unary, client_stream, server_stream or bidi_stream."""
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _rebuild(handler: Any, wrap: Callable[[Behavior, bool], Behavior]) -> Any:
    """The same kind of method handler with its behavior wrapped."""
    codec = {"request_deserializer": handler.request_deserializer,
             "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary, False), **codec)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream, True), **codec)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary, False), **codec)
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream, True), **codec)
