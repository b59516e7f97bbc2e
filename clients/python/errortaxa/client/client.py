"""The synchronous ErrorTaxa client: runs the calls of errortaxa.client.rpcs with blocking grpc."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from errortaxa.client import _core
from errortaxa.client.balancing import channel_target
from errortaxa.client.errors import ErrorTaxaError, from_rpc_error
from errortaxa.client.results import ClassifyResult
from errortaxa.client.rpcs import Batched, Call, Stream, StreamCall, SyncCaller, Unary

T = TypeVar("T")


def _windowed(items: Iterator[T], window: threading.Semaphore, finished: threading.Event) -> Iterator[T]:
    """``items``, each once ``window`` lets it go; stops when ``finished`` is set."""
    for item in items:
        while not window.acquire(timeout=0.1):
            if finished.is_set():
                return
        yield item


class Client(SyncCaller):
    """A connection to an ErrorTaxa server.

    >>> with Client("localhost:50051", token="s3cret") as client:
    ...     result = client.classify(target=[250], labels=[[250, 248]], pred=[248])
    ...     result.category, result.taxonomy.version

    ``target`` is the server address (``host:port``), a name with several address records
    (``dns:///name:port``) or several addresses (a list of ``host:port``): calls are balanced
    round-robin over the replicas (see errortaxa.client.balancing). ``token`` is sent as
    ``authorization: Bearer <token>``. TLS is used when ``tls`` is true or any certificate is
    given (``root_certificates`` as PEM bytes or a path; None = system roots). ``timeout`` is
    the default deadline in seconds of unary calls (streams have none unless given). Idempotent
    unary calls that fail with UNAVAILABLE are retried by gRPC's retry policy, ``retries`` times
    (gRPC allows at most 4) with exponential backoff and jitter, and wait for a ready replica up to
    their deadline; a ClassifyStream that fails with UNAVAILABLE is resumed ``retries`` times.
    """

    def __init__(
        self,
        target: str | Sequence[str] = f"localhost:{_core.DEFAULT_PORT}",
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | str | Path | None = None,
        certificate_chain: bytes | str | Path | None = None,
        private_key: bytes | str | Path | None = None,
        server_name: str | None = None,
        timeout: float | None = 60.0,
        retries: int = 8,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        max_message_bytes: int = _core.DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.backoff = _core.Backoff(retries=retries, initial=backoff, maximum=max_backoff)
        self._metadata = _core.auth_metadata(token)
        opts, creds = _core.channel_setup(
            tls=tls, root_certificates=root_certificates, certificate_chain=certificate_chain,
            private_key=private_key, server_name=server_name, max_message_bytes=max_message_bytes,
            backoff=self.backoff, options=options)
        if creds is not None:
            self._channel = grpc.secure_channel(channel_target(target), creds, options=opts)
        else:
            self._channel = grpc.insecure_channel(channel_target(target), options=opts)
        self._callables: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the caller: how each kind of entry of errortaxa.client.rpcs runs ----------------------
    def _wait_or_raise(self, error: grpc.RpcError, attempt: int) -> None:
        """Wait before retry ``attempt`` + 1 after an UNAVAILABLE ``error``; raise it as an
        ErrorTaxaError when it is final (another code, or no retries left)."""
        delay = self.backoff.retry_delay(error, attempt)
        if delay is None:
            raise from_rpc_error(error) from None
        time.sleep(delay)

    def _call(self, rpc: Unary[Any, T], call: Call) -> T:
        """One unary call; gRPC's retry policy (errortaxa.client.balancing) retries it."""
        send = self._callable(rpc.method)
        timeout = call.timeout if call.timeout is not None else self.timeout
        try:
            return rpc.parse(send(call.request, timeout=timeout, metadata=self._metadata))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _unary(self, rpc: Unary[Any, T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        return self._call(rpc, rpc.build(*args, **kwargs))

    def _stream(self, rpc: Stream[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[ClassifyResult]:
        return self._run_stream(rpc, rpc.build(*args, **kwargs))

    def _run_stream(self, rpc: Stream[Any], call: StreamCall) -> Iterator[ClassifyResult]:
        send = self._callable(rpc.method)
        feed = call.feed
        done = attempt = 0
        while True:
            generation, resend = feed.restart()
            window = threading.Semaphore(call.max_in_flight)
            finished = threading.Event()
            requests = _windowed(feed.requests(generation, resend), window, finished)
            responses = send(requests, timeout=call.timeout, metadata=self._metadata)
            try:
                for response in responses:
                    window.release()
                    result = feed.answered(response)
                    attempt = 0
                    done += len(result)
                    if call.report is not None:
                        call.report(done, call.total)
                    yield result
                return
            except grpc.RpcError as error:
                self._wait_or_raise(error, attempt)
                attempt += 1
            finally:
                finished.set()
                responses.cancel()

    def _batched(self, rpc: Batched[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> ClassifyResult:
        batches = rpc.build(*args, **kwargs)
        parts = list(self._run_stream(rpc.stream, batches.stream))
        if parts or batches.fallback is None:
            return ClassifyResult.concat(parts)
        return self._call(rpc.fallback, batches.fallback)

    def wait_until_serving(self, timeout: float = 30.0) -> None:
        """Block until health says SERVING (raises ErrorTaxaError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.health(timeout=1.0) == "SERVING":
                    return
            except ErrorTaxaError:
                pass
            if time.monotonic() > deadline:
                raise ErrorTaxaError(grpc.StatusCode.UNAVAILABLE, f"{self.target} is not serving")
            time.sleep(0.02)
