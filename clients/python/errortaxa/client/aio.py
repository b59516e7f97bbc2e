"""The asyncio ErrorTaxa client (grpc.aio); same calls as Client, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
import grpc.aio
import numpy as np
from errortaxa.client import _core
from errortaxa.client._core import BatchLike, ProgressLike, TaxonomyLike
from errortaxa.client.columns import OovInputs, dataset_predictions
from errortaxa.client.errors import ErrorTaxaError, from_rpc_error
from errortaxa.client.results import (
    ClassifyResult,
    DatasetInfo,
    Explanation,
    StoredTaxonomy,
    TaxonomyInfo,
    Validation,
)
from errortaxa.v1 import service_pb2, service_pb2_grpc

T = TypeVar("T")


async def _windowed(items: AsyncIterator[T], window: asyncio.Semaphore) -> AsyncIterator[T]:
    """``items``, each once ``window`` lets it go."""
    async for item in items:
        await window.acquire()
        yield item


class AsyncClient:
    """asyncio variant of :class:`errortaxa.client.Client` (same arguments)::

        async with AsyncClient("localhost:50051", token="s3cret") as client:
            result = await client.classify(target=[250], labels=[[250, 248]], pred=[248])
    """

    def __init__(
        self,
        target: str = f"localhost:{_core.DEFAULT_PORT}",
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
            self._channel = grpc.aio.secure_channel(target, creds, options=opts)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=opts)
        self._stub = service_pb2_grpc.ErrorTaxaStub(self._channel)
        self._health = self._channel.unary_unary(
            _core.HEALTH_METHOD, request_serializer=_core._identity, response_deserializer=_core._identity
        )

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _wait_or_raise(self, error: grpc.RpcError, attempt: int) -> None:
        """Wait before retry ``attempt`` + 1 after an UNAVAILABLE ``error``; raise it as an
        ErrorTaxaError when it is final (another code, or no retries left)."""
        delay = self.backoff.retry_delay(error, attempt)
        if delay is None:
            raise from_rpc_error(error) from None
        await asyncio.sleep(delay)

    async def _unary(self, call: Callable[..., Awaitable[T]], request: Any, timeout: float | None) -> T:
        attempt = 0
        while True:
            try:
                return await call(request, timeout=timeout if timeout is not None else self.timeout,
                                  metadata=self._metadata)
            except grpc.RpcError as error:
                await self._wait_or_raise(error, attempt)
                attempt += 1

    async def health(self, service: str = "", *, timeout: float | None = 5.0) -> str:
        data = await self._unary(self._health, _core.encode_health_request(service), timeout)
        return _core.decode_health_status(data)

    async def wait_until_serving(self, timeout: float = 30.0) -> None:
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

    async def classify(
        self,
        samples: BatchLike = None,
        *,
        taxonomy: TaxonomyLike = None,
        records: bool = False,
        with_evidence: bool = False,
        summary: bool = False,
        timeout: float | None = None,
        **columns: Any,
    ) -> ClassifyResult:
        item = _core.batch_item(samples, columns)
        options = _core.result_options(records=records, evidence=with_evidence, summary=summary)
        request = _core.classify_request(item, taxonomy=taxonomy, options=options)
        return ClassifyResult.from_proto(await self._unary(self._stub.Classify, request, timeout))

    async def classify_dataset(
        self,
        dataset: str,
        *,
        pred: Sequence[int] | np.ndarray | None = None,
        logits: np.ndarray | None = None,
        images: Sequence[str] | None = None,
        offset: int = 0,
        taxonomy: TaxonomyLike = None,
        records: bool = False,
        with_evidence: bool = False,
        summary: bool = False,
        timeout: float | None = None,
        **oov: Any,
    ) -> ClassifyResult:
        item = dataset_predictions(dataset, pred=pred, logits=logits, images=images, offset=offset,
                                   oov=OovInputs.build(**oov))
        options = _core.result_options(records=records, evidence=with_evidence, summary=summary)
        request = _core.classify_request(item, taxonomy=taxonomy, options=options)
        return ClassifyResult.from_proto(await self._unary(self._stub.Classify, request, timeout))

    async def classify_stream(
        self,
        batches: Iterable[BatchLike] | AsyncIterable[BatchLike],
        *,
        taxonomy: TaxonomyLike = None,
        records: bool = False,
        with_evidence: bool = False,
        total: int | None = None,
        progress: ProgressLike = None,
        max_in_flight: int = 4,
        timeout: float | None = None,
    ) -> AsyncIterator[ClassifyResult]:
        """Async generator over one ClassifyStream call (see Client.classify_stream, retries included)."""
        report = _core.progress_callback(progress)
        options = _core.result_options(records=records, evidence=with_evidence, summary=False)
        feed = _core.StreamFeed(batches, taxonomy=taxonomy, options=options)
        done = attempt = 0
        while True:
            generation, resend = feed.restart()
            window = asyncio.Semaphore(max(1, max_in_flight))
            call = self._stub.ClassifyStream(_windowed(feed.arequests(generation, resend), window),
                                             timeout=timeout, metadata=self._metadata)
            try:
                async for response in call:
                    window.release()
                    result = feed.answered(response)
                    attempt = 0
                    done += len(result)
                    if report is not None:
                        report(done, total)
                    yield result
                return
            except grpc.RpcError as error:
                await self._wait_or_raise(error, attempt)
                attempt += 1
            finally:
                call.cancel()

    async def classify_many(
        self,
        samples: BatchLike = None,
        *,
        batch_size: int = 10_000,
        taxonomy: TaxonomyLike = None,
        records: bool = False,
        with_evidence: bool = False,
        progress: ProgressLike = None,
        max_in_flight: int = 4,
        timeout: float | None = None,
        **columns: Any,
    ) -> ClassifyResult:
        item = _core.many_samples(samples, columns)
        parts = [r async for r in self.classify_stream(
            _core.column_batches(item, batch_size), taxonomy=taxonomy, records=records,
            with_evidence=with_evidence, total=len(item), progress=progress,
            max_in_flight=max_in_flight, timeout=timeout,
        )]
        return ClassifyResult.concat(parts) if parts else await self.classify(item, taxonomy=taxonomy)

    async def classify_dataset_many(
        self,
        dataset: str,
        *,
        pred: Sequence[int] | np.ndarray | None = None,
        logits: np.ndarray | None = None,
        images: Sequence[str] | None = None,
        batch_size: int = 10_000,
        taxonomy: TaxonomyLike = None,
        records: bool = False,
        with_evidence: bool = False,
        progress: ProgressLike = None,
        max_in_flight: int = 4,
        timeout: float | None = None,
        **oov: Any,
    ) -> ClassifyResult:
        chunks, total = _core.dataset_chunks(dataset, pred=pred, logits=logits, images=images,
                                             batch_size=batch_size, oov=oov)
        parts = [r async for r in self.classify_stream(
            chunks, taxonomy=taxonomy, records=records, with_evidence=with_evidence, total=total,
            progress=progress, max_in_flight=max_in_flight, timeout=timeout,
        )]
        return ClassifyResult.concat(parts)

    async def explain(
        self,
        samples: BatchLike = None,
        *,
        index: int = 0,
        taxonomy: TaxonomyLike = None,
        timeout: float | None = None,
        **columns: Any,
    ) -> Explanation:
        request = _core.explain_request(_core.batch_item(samples, columns), index=index, taxonomy=taxonomy)
        return Explanation.from_proto(await self._unary(self._stub.Explain, request, timeout))

    async def list_taxonomies(self, name: str = "", *, timeout: float | None = None) -> list[TaxonomyInfo]:
        request = service_pb2.ListTaxonomiesRequest(name=name)
        response = await self._unary(self._stub.ListTaxonomies, request, timeout)
        return [TaxonomyInfo.from_proto(t) for t in response.taxonomies]

    async def get_taxonomy(self, taxonomy: TaxonomyLike = None, *, timeout: float | None = None
                           ) -> tuple[TaxonomyInfo, str]:
        request = service_pb2.GetTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy))
        response = await self._unary(self._stub.GetTaxonomy, request, timeout)
        return TaxonomyInfo.from_proto(response.taxonomy), response.yaml

    async def validate_taxonomy(self, yaml: str, *, filename: str = "", timeout: float | None = None
                                ) -> Validation:
        request = service_pb2.ValidateTaxonomyRequest(yaml=yaml, filename=filename)
        return Validation.from_proto(await self._unary(self._stub.ValidateTaxonomy, request, timeout))

    async def put_taxonomy(
        self, yaml: str, *, activate: bool = False, filename: str = "", timeout: float | None = None
    ) -> StoredTaxonomy:
        request = service_pb2.PutTaxonomyRequest(yaml=yaml, activate=activate, filename=filename)
        return StoredTaxonomy.from_proto(await self._unary(self._stub.PutTaxonomy, request, timeout))

    async def activate_taxonomy(
        self, taxonomy: TaxonomyLike, *, timeout: float | None = None
    ) -> TaxonomyInfo:
        request = service_pb2.ActivateTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy))
        response = await self._unary(self._stub.ActivateTaxonomy, request, timeout)
        return TaxonomyInfo.from_proto(response.taxonomy)

    async def delete_taxonomy(self, taxonomy: TaxonomyLike, *, timeout: float | None = None) -> None:
        request = service_pb2.DeleteTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy))
        await self._unary(self._stub.DeleteTaxonomy, request, timeout)

    async def list_datasets(self, *, timeout: float | None = None) -> list[DatasetInfo]:
        response = await self._unary(self._stub.ListDatasets, service_pb2.ListDatasetsRequest(), timeout)
        return [DatasetInfo.from_proto(d) for d in response.datasets]

    async def get_dataset(self, name: str, *, timeout: float | None = None) -> DatasetInfo:
        response = await self._unary(self._stub.GetDataset, service_pb2.GetDatasetRequest(name=name), timeout)
        return DatasetInfo.from_proto(response.dataset)

    async def register_dataset(
        self, name: str, path: str, *, replace: bool = False, timeout: float | None = None
    ) -> DatasetInfo:
        request = service_pb2.RegisterDatasetRequest(name=name, path=path, replace=replace)
        response = await self._unary(self._stub.RegisterDataset, request, timeout)
        return DatasetInfo.from_proto(response.dataset)
