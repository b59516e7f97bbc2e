"""The synchronous ErrorTaxa client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
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


def _windowed(items: Iterator[T], window: threading.Semaphore, finished: threading.Event) -> Iterator[T]:
    """``items``, each once ``window`` lets it go; stops when ``finished`` is set."""
    for item in items:
        while not window.acquire(timeout=0.1):
            if finished.is_set():
                return
        yield item


class Client:
    """A connection to an ErrorTaxa server.

    >>> with Client("localhost:50051", token="s3cret") as client:
    ...     result = client.classify(target=[250], labels=[[250, 248]], pred=[248])
    ...     result.category, result.taxonomy.version

    ``target`` is the server address (``host:port``). ``token`` is sent as
    ``authorization: Bearer <token>``. TLS is used when ``tls`` is true or any certificate is
    given (``root_certificates`` as PEM bytes or a path; None = system roots). ``timeout`` is
    the default deadline in seconds of unary calls (streams have none unless given). Unary calls
    that fail with UNAVAILABLE are retried ``retries`` times with exponential backoff and jitter.
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
            self._channel = grpc.secure_channel(target, creds, options=opts)
        else:
            self._channel = grpc.insecure_channel(target, options=opts)
        self._stub = service_pb2_grpc.ErrorTaxaStub(self._channel)
        self._health = self._channel.unary_unary(
            _core.HEALTH_METHOD, request_serializer=_core._identity, response_deserializer=_core._identity
        )

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- calls -----------------------------------------------------------------------------
    def _wait_or_raise(self, error: grpc.RpcError, attempt: int) -> None:
        """Wait before retry ``attempt`` + 1 after an UNAVAILABLE ``error``; raise it as an
        ErrorTaxaError when it is final (another code, or no retries left)."""
        delay = self.backoff.retry_delay(error, attempt)
        if delay is None:
            raise from_rpc_error(error) from None
        time.sleep(delay)

    def _unary(self, call: Callable[..., T], request: Any, timeout: float | None) -> T:
        attempt = 0
        while True:
            try:
                return call(request, timeout=timeout if timeout is not None else self.timeout,
                            metadata=self._metadata)
            except grpc.RpcError as error:
                self._wait_or_raise(error, attempt)
                attempt += 1

    def health(self, service: str = "", *, timeout: float | None = 5.0) -> str:
        """The server's grpc.health.v1 status: "SERVING", "NOT_SERVING", ..."""
        data = self._unary(self._health, _core.encode_health_request(service), timeout)
        return _core.decode_health_status(data)

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

    def classify(
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
        """Classify one batch: ``samples`` (Samples, an engine SampleBatch) or columns as keywords
        (``target``, ``pred``, ``labels`` or ``label_offsets`` + ``label_values``,
        ``problematic``, ``images``, ``ids``), lists or numpy arrays, plus the optional OOV inputs
        (also beside ``samples``): ``evidence`` (per-sample JSON answers), ``oov_embeddings``
        (float32 [N, D] image embeddings), ``knn_classes`` ([N, k] ints, -1 = padding) and
        ``image_bytes`` (encoded image files, b"" or None = none); see docs/SERVICE.md.
        ``records`` asks for the engine's JSON record per sample, ``with_evidence`` for the evidence
        of each decision, ``summary`` for the batch summary."""
        item = _core.batch_item(samples, columns)
        options = _core.result_options(records=records, evidence=with_evidence, summary=summary)
        request = _core.classify_request(item, taxonomy=taxonomy, options=options)
        return ClassifyResult.from_proto(self._unary(self._stub.Classify, request, timeout))

    def classify_dataset(
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
        """Classify a model's predictions (top-1 ``pred`` or ``logits``) on a dataset the server
        holds, in the dataset's order from row ``offset`` or keyed by ``images``; ``oov``: the
        OOV inputs of classify (one row per prediction)."""
        item = dataset_predictions(dataset, pred=pred, logits=logits, images=images, offset=offset,
                                   oov=OovInputs.build(**oov))
        options = _core.result_options(records=records, evidence=with_evidence, summary=summary)
        request = _core.classify_request(item, taxonomy=taxonomy, options=options)
        return ClassifyResult.from_proto(self._unary(self._stub.Classify, request, timeout))

    def classify_stream(
        self,
        batches: Iterable[BatchLike],
        *,
        taxonomy: TaxonomyLike = None,
        records: bool = False,
        with_evidence: bool = False,
        total: int | None = None,
        progress: ProgressLike = None,
        max_in_flight: int = 4,
        timeout: float | None = None,
    ) -> Iterator[ClassifyResult]:
        """Classify a stream of batches over one ClassifyStream call; yields one result per batch,
        in order, all decided by the taxonomy version the stream started with. At most
        ``max_in_flight`` batches are sent ahead of the results read, so memory stays flat
        however long the input. ``progress``: True for a line on stderr, or a callable
        ``(samples_done, total)``.

        A stream that fails with UNAVAILABLE is retried like a unary call (``retries``, backoff):
        a new stream sends the batches not yet answered again (at most ``max_in_flight`` + 1 are
        kept), then the rest; results already yielded are not repeated. Once a result has arrived,
        the new stream names that result's taxonomy version, so every result still comes from
        one version (a version the restarted server no longer has fails with NOT_FOUND). The
        retry count starts again after each result."""
        report = _core.progress_callback(progress)
        options = _core.result_options(records=records, evidence=with_evidence, summary=False)
        feed = _core.StreamFeed(batches, taxonomy=taxonomy, options=options)
        done = attempt = 0
        while True:
            generation, resend = feed.restart()
            window = threading.Semaphore(max(1, max_in_flight))
            finished = threading.Event()

            requests = _windowed(feed.requests(generation, resend), window, finished)
            call = self._stub.ClassifyStream(requests, timeout=timeout, metadata=self._metadata)
            try:
                for response in call:
                    window.release()
                    result = feed.answered(response)
                    attempt = 0
                    done += len(result)
                    if report is not None:
                        report(done, total)
                    yield result
                return
            except grpc.RpcError as error:
                self._wait_or_raise(error, attempt)
                attempt += 1
            finally:
                finished.set()
                call.cancel()

    def classify_many(
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
        """Classify any number of samples over one stream in batches of ``batch_size``; returns
        one result (every part decided by the same taxonomy version)."""
        item = _core.many_samples(samples, columns)
        parts = list(self.classify_stream(
            _core.column_batches(item, batch_size), taxonomy=taxonomy, records=records,
            with_evidence=with_evidence, total=len(item), progress=progress,
            max_in_flight=max_in_flight, timeout=timeout,
        ))
        return ClassifyResult.concat(parts) if parts else self.classify(item, taxonomy=taxonomy)

    def classify_dataset_many(
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
        """Like classify_dataset for any number of predictions, streamed in batches."""
        chunks, total = _core.dataset_chunks(dataset, pred=pred, logits=logits, images=images,
                                             batch_size=batch_size, oov=oov)
        parts = list(self.classify_stream(
            chunks, taxonomy=taxonomy, records=records, with_evidence=with_evidence, total=total,
            progress=progress, max_in_flight=max_in_flight, timeout=timeout,
        ))
        return ClassifyResult.concat(parts)

    def explain(
        self,
        samples: BatchLike = None,
        *,
        index: int = 0,
        taxonomy: TaxonomyLike = None,
        timeout: float | None = None,
        **columns: Any,
    ) -> Explanation:
        """Every rule tried on sample ``index`` of the given samples (or DatasetPredictions)."""
        request = _core.explain_request(_core.batch_item(samples, columns), index=index, taxonomy=taxonomy)
        return Explanation.from_proto(self._unary(self._stub.Explain, request, timeout))

    # -- taxonomies ------------------------------------------------------------------------
    def list_taxonomies(self, name: str = "", *, timeout: float | None = None) -> list[TaxonomyInfo]:
        request = service_pb2.ListTaxonomiesRequest(name=name)
        response = self._unary(self._stub.ListTaxonomies, request, timeout)
        return [TaxonomyInfo.from_proto(t) for t in response.taxonomies]

    def get_taxonomy(self, taxonomy: TaxonomyLike = None, *, timeout: float | None = None
                     ) -> tuple[TaxonomyInfo, str]:
        """The metadata and YAML text of a version (default: the active one)."""
        request = service_pb2.GetTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy))
        response = self._unary(self._stub.GetTaxonomy, request, timeout)
        return TaxonomyInfo.from_proto(response.taxonomy), response.yaml

    def active_taxonomy(self, *, timeout: float | None = None) -> TaxonomyInfo:
        return self.get_taxonomy(None, timeout=timeout)[0]

    def validate_taxonomy(self, yaml: str, *, filename: str = "", timeout: float | None = None) -> Validation:
        """Dry run: compile YAML text on the server and return every problem."""
        request = service_pb2.ValidateTaxonomyRequest(yaml=yaml, filename=filename)
        return Validation.from_proto(self._unary(self._stub.ValidateTaxonomy, request, timeout))

    def put_taxonomy(
        self, yaml: str, *, activate: bool = False, filename: str = "", timeout: float | None = None
    ) -> StoredTaxonomy:
        """Admin: compile and store a version (raises InvalidArgument with every problem)."""
        request = service_pb2.PutTaxonomyRequest(yaml=yaml, activate=activate, filename=filename)
        return StoredTaxonomy.from_proto(self._unary(self._stub.PutTaxonomy, request, timeout))

    def activate_taxonomy(self, taxonomy: TaxonomyLike, *, timeout: float | None = None) -> TaxonomyInfo:
        """Admin: make ``name@version`` the default."""
        request = service_pb2.ActivateTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy))
        return TaxonomyInfo.from_proto(self._unary(self._stub.ActivateTaxonomy, request, timeout).taxonomy)

    def delete_taxonomy(self, taxonomy: TaxonomyLike, *, timeout: float | None = None) -> None:
        """Admin: delete ``name@version`` (not the active one)."""
        request = service_pb2.DeleteTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy))
        self._unary(self._stub.DeleteTaxonomy, request, timeout)

    # -- datasets --------------------------------------------------------------------------
    def list_datasets(self, *, timeout: float | None = None) -> list[DatasetInfo]:
        response = self._unary(self._stub.ListDatasets, service_pb2.ListDatasetsRequest(), timeout)
        return [DatasetInfo.from_proto(d) for d in response.datasets]

    def get_dataset(self, name: str, *, timeout: float | None = None) -> DatasetInfo:
        response = self._unary(self._stub.GetDataset, service_pb2.GetDatasetRequest(name=name), timeout)
        return DatasetInfo.from_proto(response.dataset)

    def dataset_images(self, name: str, *, timeout: float | None = None) -> list[str]:
        """The image ids of a dataset, in its order (the order of dataset predictions)."""
        request = service_pb2.GetDatasetRequest(name=name, include_images=True)
        return list(self._unary(self._stub.GetDataset, request, timeout).images)

    def register_dataset(
        self, name: str, path: str, *, replace: bool = False, timeout: float | None = None
    ) -> DatasetInfo:
        """Admin: load a label file lying on the server and hold it as ``name``."""
        request = service_pb2.RegisterDatasetRequest(name=name, path=path, replace=replace)
        return DatasetInfo.from_proto(self._unary(self._stub.RegisterDataset, request, timeout).dataset)
