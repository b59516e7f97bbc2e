"""Admission control: no client can take the threads that others, health and reflection need.

The server's thread pool has one thread for every call admitted plus ``RESERVED_THREADS``:

Which of these a method is, its declaration says (declarations.py: uncounted, computing, stream).

- calls that compute (Classify, Explain, Validate, Put, ...) are admitted while fewer than
  ``max_calls`` are in progress, else refused at once with RESOURCE_EXHAUSTED; at most
  ``concurrency`` of them compute at a time (the others wait for a slot, holding their thread);
- a stream (ClassifyStream) is admitted while fewer than ``max_streams`` are open and fewer than
  ``max_streams_per_client`` from the same client (its token's name when tokens are configured,
  else its connection); it holds a computing slot only while it answers a batch, and a stream that
  sends no batch for ``idle_seconds`` is ended with DEADLINE_EXCEEDED (reason STREAM_IDLE); its
  place is free as soon as the call is over (a client's cancel included), and a stream over a limit
  waits ``PLACE_WAIT_SECONDS`` for a place before it is refused (a cancel the server has not seen
  yet);
- health, reflection and the listings are never counted: with every admitted call and stream
  holding its thread, the reserved threads still answer them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from errortaxa.server.errors import ServiceError

RESERVED_THREADS = 4
#: How long a stream over a stream limit waits for a place before it is refused: a client that
#: cancels a stream and opens the next at once may be ahead of the server seeing the cancel.
PLACE_WAIT_SECONDS = 0.25
_END = object()


def _exhausted(message: str, reason: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, reason=reason)


def _shutting_down() -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry on another",
                        reason="SHUTTING_DOWN")


class Admission:
    """Counters and the computing slots of one server (thread-safe)."""

    def __init__(self, *, concurrency: int, max_calls: int, max_streams: int, max_streams_per_client: int,
                 idle_seconds: float) -> None:
        self.compute = threading.Semaphore(concurrency)
        self.max_calls = max_calls
        self.max_streams = max_streams
        self.max_streams_per_client = max_streams_per_client
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # notified when a stream's place is freed
        self._calls = 0
        self._streams: dict[str, int] = {}
        self.closing = threading.Event()  # set when the server stops: new calls get UNAVAILABLE
        self.ending = threading.Event()  # set when the stop's grace is over: open streams end UNAVAILABLE

    @property
    def threads(self) -> int:
        """The thread pool's size: every admitted call and stream, plus the reserved threads."""
        return self.max_calls + self.max_streams + RESERVED_THREADS

    def refuse_new(self) -> None:
        """From now on refuse every computing call and stream with UNAVAILABLE (the server is
        stopping): grpc itself would end calls that arrive during its shutdown with CANCELLED."""
        self.closing.set()

    def end_streams(self) -> None:
        """End every open stream with UNAVAILABLE at its next read of a request (the server stops)."""
        self.ending.set()

    def wait_idle(self, timeout: float, *, streams_only: bool = False) -> bool:
        """Wait until no admitted call (unless ``streams_only``) or stream is in progress (True) or
        ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while (self._calls and not streams_only) or self._streams:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _check_open(self) -> None:
        if self.closing.is_set():
            raise _shutting_down()

    def calls_in_progress(self) -> int:
        return self._calls

    def open_streams(self) -> int:
        return sum(self._streams.values())

    @contextmanager
    def call(self) -> Iterator[None]:
        """Admit one computing call (ServiceError RESOURCE_EXHAUSTED when full) and hold a slot."""
        self._check_open()
        with self._lock:
            if self._calls >= self.max_calls:
                raise _exhausted(f"the server is busy: {self.max_calls} calls in progress (max_concurrent_rpcs); "
                                 "retry later", "TOO_MANY_CALLS")
            self._calls += 1
        try:
            with self.compute:
                yield
        finally:
            with self._lock:
                self._calls -= 1

    @contextmanager
    def stream(self, client: str) -> Iterator[Callable[[], None]]:
        """Admit one stream of ``client`` (ServiceError RESOURCE_EXHAUSTED when full, after waiting
        PLACE_WAIT_SECONDS for a place) and hold its place; gives the function that frees the place
        at once (at the call's end, a cancel included; the exit frees it too, once in all)."""
        self._check_open()
        with self._freed:
            deadline = time.monotonic() + PLACE_WAIT_SECONDS
            while (full := self._stream_refusal(client)) is not None:
                if time.monotonic() >= deadline:
                    raise full
                self._freed.wait(max(deadline - time.monotonic(), 0.001))
            self._streams[client] = self._streams.get(client, 0) + 1
        held = [True]

        def release() -> None:
            with self._lock:
                if not held[0]:
                    return
                held[0] = False
                self._streams[client] -= 1
                if not self._streams[client]:
                    del self._streams[client]
                self._freed.notify_all()

        try:
            yield release
        finally:
            release()

    def _stream_refusal(self, client: str) -> ServiceError | None:
        """Why one more stream of ``client`` is refused now (None: it is admitted)."""
        if self._streams.get(client, 0) >= self.max_streams_per_client:
            return _exhausted(f"this client has {self.max_streams_per_client} streams open "
                              "(max_streams_per_client); close one first", "TOO_MANY_STREAMS")
        if sum(self._streams.values()) >= self.max_streams:
            return _exhausted(f"the server has {self.max_streams} streams open (max_streams); retry later",
                              "TOO_MANY_STREAMS")
        return None

    def requests(self, source: Iterator[Any], context: grpc.ServicerContext) -> StreamRequests:
        return StreamRequests(source, context, self.compute, self.idle_seconds, self.ending)


class StreamRequests:
    """A stream's requests, read on a thread of their own: the handler waits for the next one at
    most ``idle_seconds`` (then ServiceError DEADLINE_EXCEEDED), and holds a computing slot from a
    request's arrival until it asks for the next one. Once ``ending`` is set (the server stops),
    asking for the next one is ServiceError UNAVAILABLE."""

    def __init__(self, source: Iterator[Any], context: grpc.ServicerContext, compute: threading.Semaphore,
                 idle_seconds: float, ending: threading.Event) -> None:
        self._compute = compute
        self._ending = ending
        self._idle = idle_seconds
        self._holding = False
        self._closed = threading.Event()
        self._queue: queue.Queue[tuple[object, Any]] = queue.Queue(maxsize=1)  # flow control: one ahead
        self._reader = threading.Thread(target=self._read, args=(source,), name="errortaxa-stream-reader",
                                        daemon=True)
        self._reader.start()
        context.add_callback(self._closed.set)

    def _put(self, item: tuple[object, Any]) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _read(self, source: Iterator[Any]) -> None:
        try:
            for request in source:
                self._put((None, request))
                if self._closed.is_set():
                    return
            self._put((_END, None))
        except Exception as exc:  # the client went away (grpc.RpcError) or sent what does not decode
            self._put((_END, exc))

    def __iter__(self) -> StreamRequests:
        return self

    def __next__(self) -> Any:
        self.release()
        deadline = time.monotonic() + self._idle
        while True:
            if self._ending.is_set():
                raise _shutting_down()
            try:
                kind, item = self._queue.get(timeout=min(0.25, max(deadline - time.monotonic(), 0.001)))
                break
            except queue.Empty:
                if self._closed.is_set():  # the call ended (the client cancelled it or went away)
                    raise StopIteration from None
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"no request for {self._idle:g} s (stream_idle_seconds): the idle stream is closed",
                        reason="STREAM_IDLE") from None
        if kind is _END:
            if item is not None:
                raise item
            raise StopIteration
        self._compute.acquire()
        self._holding = True
        return item

    def release(self) -> None:
        """Give back the computing slot (when the handler asks for the next request, or ends)."""
        if self._holding:
            self._holding = False
            self._compute.release()

    def close(self) -> None:
        self.release()
        self._closed.set()
