"""The asyncio ErrorTaxa client: runs the calls of errortaxa.client.rpcs with grpc.aio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
import grpc.aio
from errortaxa.client import _core
from errortaxa.client.balancing import channel_target
from errortaxa.client.errors import ErrorTaxaError, from_rpc_error
from errortaxa.client.results import ClassifyResult
from errortaxa.client.rpcs import AsyncCaller, Batched, Call, Stream, StreamCall, Unary

T = TypeVar("T")


async def _windowed(items: AsyncIterator[T], window: asyncio.Semaphore) -> AsyncIterator[T]:
    """``items``, each once ``window`` lets it go."""
    async for item in items:
        await window.acquire()
        yield item


class AsyncClient(AsyncCaller):
    """asyncio variant of :class:`errortaxa.client.Client` (same arguments)::

        async with AsyncClient("localhost:50051", token="s3cret") as client:
            result = await client.classify(target=[250], labels=[[250, 248]], pred=[248])
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
            self._channel = grpc.aio.secure_channel(channel_target(target), creds, options=opts)
        else:
            self._channel = grpc.aio.insecure_channel(channel_target(target), options=opts)
        self._callables: dict[str, Any] = {}

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- the caller: how each kind of entry of errortaxa.client.rpcs runs ----------------------
    async def _wait_or_raise(self, error: grpc.RpcError, attempt: int) -> None:
        """Wait before retry ``attempt`` + 1 after an UNAVAILABLE ``error``; raise it as an
        ErrorTaxaError when it is final (another code, or no retries left)."""
        delay = self.backoff.retry_delay(error, attempt)
        if delay is None:
            raise from_rpc_error(error) from None
        await asyncio.sleep(delay)

    async def _call(self, rpc: Unary[Any, T], call: Call) -> T:
        """One unary call; gRPC's retry policy (errortaxa.client.balancing) retries it."""
        send = self._callable(rpc.method)
        timeout = call.timeout if call.timeout is not None else self.timeout
        try:
            return rpc.parse(await send(call.request, timeout=timeout, metadata=self._metadata))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def _unary(self, rpc: Unary[Any, T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        return await self._call(rpc, rpc.build(*args, **kwargs))

    async def _stream(self, rpc: Stream[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
                      ) -> AsyncIterator[ClassifyResult]:
        async for result in self._run_stream(rpc, rpc.build(*args, **kwargs)):
            yield result

    async def _run_stream(self, rpc: Stream[Any], call: StreamCall) -> AsyncIterator[ClassifyResult]:
        send = self._callable(rpc.method)
        feed = call.feed
        done = attempt = 0
        while True:
            generation, resend = feed.restart()
            window = asyncio.Semaphore(call.max_in_flight)
            responses = send(_windowed(feed.arequests(generation, resend), window), timeout=call.timeout,
                             metadata=self._metadata)
            try:
                async for response in responses:
                    window.release()
                    result = feed.answered(response)
                    attempt = 0
                    done += len(result)
                    if call.report is not None:
                        call.report(done, call.total)
                    yield result
                return
            except grpc.RpcError as error:
                await self._wait_or_raise(error, attempt)
                attempt += 1
            finally:
                responses.cancel()

    async def _batched(self, rpc: Batched[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> ClassifyResult:
        batches = rpc.build(*args, **kwargs)
        parts = [result async for result in self._run_stream(rpc.stream, batches.stream)]
        if parts or batches.fallback is None:
            return ClassifyResult.concat(parts)
        return await self._call(rpc.fallback, batches.fallback)

    async def wait_until_serving(self, timeout: float = 30.0) -> None:
        """Wait until health says SERVING (raises ErrorTaxaError after ``timeout`` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                if await self.health(timeout=1.0) == "SERVING":
                    return
            except ErrorTaxaError:
                pass
            if loop.time() > deadline:
                raise ErrorTaxaError(grpc.StatusCode.UNAVAILABLE, f"{self.target} is not serving")
            await asyncio.sleep(0.02)
