"""Transport-independent pieces shared by Client and AsyncClient: request building, channel
options and credentials, retry delays, progress reporting, the health-check codec."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from errortaxa.client.balancing import service_config
from errortaxa.client.columns import (
    OOV_KEYS,
    OovInputs,
    ProviderInputsLike,
    Samples,
    dataset_predictions,
    fill_provider_inputs,
    oov_inputs,
    slice_provider_inputs,
)
from errortaxa.client.results import ClassifyResult, TaxonomyInfo
from errortaxa.v1 import samples_pb2, service_pb2, taxonomy_pb2
from errortaxa.v1.codec import varint

#: Default port of ``errortaxa serve``.
DEFAULT_PORT = 50051
DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024
HEALTH_METHOD = "/grpc.health.v1.Health/Check"

TaxonomyLike = str | TaxonomyInfo | taxonomy_pb2.TaxonomyRef | None
#: Something that can be classified: Samples, an engine SampleBatch, a dict of columns for
#: Samples.build, or predictions on a held dataset (DatasetPredictions, see dataset_predictions()).
BatchLike = Any
ProgressLike = Callable[[int, "int | None"], None] | bool | None


def taxonomy_ref(taxonomy: TaxonomyLike) -> taxonomy_pb2.TaxonomyRef | None:
    """``None`` (the active taxonomy), ``"name"``, ``"name@version"``, a TaxonomyInfo or a ref."""
    if taxonomy is None or taxonomy == "":
        return None
    if isinstance(taxonomy, taxonomy_pb2.TaxonomyRef):
        return taxonomy
    if isinstance(taxonomy, TaxonomyInfo):
        return taxonomy_pb2.TaxonomyRef(name=taxonomy.name, version=taxonomy.version)
    name, _, version = taxonomy.partition("@")
    return taxonomy_pb2.TaxonomyRef(name=name, version=version)


def result_options(*, records: bool, evidence: bool, summary: bool) -> service_pb2.ResultOptions:
    return service_pb2.ResultOptions(records=records, evidence=evidence, summary=summary)


def samples_of(item: BatchLike) -> Samples | samples_pb2.DatasetPredictions:
    if isinstance(item, (Samples, samples_pb2.DatasetPredictions)):
        return item
    if isinstance(item, Mapping):
        return Samples.build(**item)
    return Samples.of(item)


def batch_item(samples: BatchLike, columns: dict[str, Any]) -> BatchLike:
    """What classify, classify_many and explain send: ``Samples.build(**columns)`` when no
    ``samples`` are given, else ``samples`` with the inputs among ``columns`` attached:
    ``provider_inputs`` and the OOV inputs (OOV_KEYS: evidence, oov_embeddings, knn_classes,
    image_bytes)."""
    if samples is None:
        return Samples.build(**columns)
    unknown = sorted(set(columns) - {*OOV_KEYS, "provider_inputs"})
    if unknown:
        raise TypeError(f"with samples given, only provider_inputs and the OOV inputs {OOV_KEYS} may be keywords, "
                        f"not {unknown}")
    rest = dict(columns)
    inputs = rest.pop("provider_inputs", None)
    oov = oov_inputs(rest)
    if oov is None and inputs is None:
        return samples
    source = samples_of(samples)
    if isinstance(source, Samples):
        source = source if oov is None else source.with_oov(oov)
        return source if inputs is None else source.with_provider_inputs(inputs)
    message = samples_pb2.DatasetPredictions()
    message.CopyFrom(source)
    if oov is not None:
        oov.to_proto(message.oov)
    fill_provider_inputs(message, inputs)
    return message


def classify_request(
    item: BatchLike,
    *,
    taxonomy: TaxonomyLike = None,
    options: service_pb2.ResultOptions | None = None,
    sequence: int = 0,
) -> service_pb2.ClassifyRequest:
    request = service_pb2.ClassifyRequest(sequence=sequence)
    ref = taxonomy_ref(taxonomy)
    if ref is not None:
        request.taxonomy.CopyFrom(ref)
    if options is not None:
        request.options.CopyFrom(options)
    _fill_input(request, item)
    return request


def _fill_input(request: service_pb2.ClassifyRequest | service_pb2.ExplainRequest, item: BatchLike) -> None:
    """The request's samples (written in place) or dataset predictions."""
    source = samples_of(item)
    if isinstance(source, Samples):
        source.to_proto(request.samples)
    else:
        request.dataset.CopyFrom(source)


def explain_request(item: BatchLike, *, index: int, taxonomy: TaxonomyLike) -> service_pb2.ExplainRequest:
    request = service_pb2.ExplainRequest(index=index)
    ref = taxonomy_ref(taxonomy)
    if ref is not None:
        request.taxonomy.CopyFrom(ref)
    _fill_input(request, item)
    return request


def many_samples(samples: BatchLike, columns: dict[str, Any]) -> Samples:
    """What classify_many streams: samples (TypeError for dataset predictions)."""
    item = samples_of(batch_item(samples, columns))
    if not isinstance(item, Samples):
        raise TypeError("classify_many takes samples; use classify_dataset_many for datasets")
    return item


def column_batches(samples: Samples, batch_size: int) -> Iterator[Samples]:
    for start in range(0, len(samples), batch_size):
        yield samples.slice(start, start + batch_size)


def dataset_chunks(
    dataset: str,
    *,
    pred: Sequence[int] | np.ndarray | None,
    logits: np.ndarray | None,
    images: Sequence[str] | None,
    batch_size: int,
    oov: Mapping[str, Any] | None = None,
    provider_inputs: ProviderInputsLike | None = None,
) -> tuple[Iterator[samples_pb2.DatasetPredictions], int]:
    """Predictions on a held dataset in messages of ``batch_size`` (from their offsets in dataset
    order, or keyed by ``images``), with their provider inputs and OOV inputs (keywords of
    OovInputs.build) cut alike; and the number of predictions. ValueError when there are none
    (before any stream)."""
    if (pred is None) == (logits is None):
        raise ValueError("give exactly one of pred and logits")
    n = len(pred) if pred is not None else len(logits)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("no predictions given")
    inputs = OovInputs.build(**(oov or {}))

    def chunks() -> Iterator[samples_pb2.DatasetPredictions]:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            yield dataset_predictions(
                dataset,
                pred=None if pred is None else pred[start:stop],
                logits=None if logits is None else logits[start:stop],
                images=None if images is None else images[start:stop],
                offset=0 if images is not None else start,
                oov=None if inputs is None else inputs.slice(start, stop),
                provider_inputs=slice_provider_inputs(provider_inputs, start, stop),
            )

    return chunks(), n


def channel_options(max_message_bytes: int, backoff: Backoff, extra: Sequence[tuple[str, Any]] = ()
                    ) -> list[tuple[str, Any]]:
    """Channel options: the service config (round-robin over replicas, the retry policy of the
    idempotent methods: errortaxa.client.balancing), message size limits, keepalive, and the
    channel's reconnect backoff within
    the client's retry backoff bounds (gRPC's default waits 1 s, then longer, before reconnecting
    to a server that went away, and calls fail at once meanwhile); an option in ``extra`` replaces
    the one of the same name (gRPC would keep the first)."""
    defaults = [
        ("grpc.service_config", service_config(backoff.retries, backoff.initial, backoff.maximum)),
        ("grpc.enable_retries", 1),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.initial_reconnect_backoff_ms", max(1, int(backoff.initial * 1000))),
        ("grpc.min_reconnect_backoff_ms", max(1, int(backoff.initial * 1000))),
        ("grpc.max_reconnect_backoff_ms", max(1, int(backoff.maximum * 1000))),
    ]
    given = {name for name, _ in extra}
    return [option for option in defaults if option[0] not in given] + list(extra)


def channel_setup(
    *,
    tls: bool,
    root_certificates: bytes | str | Path | None,
    certificate_chain: bytes | str | Path | None,
    private_key: bytes | str | Path | None,
    server_name: str | None,
    max_message_bytes: int,
    backoff: Backoff,
    options: Sequence[tuple[str, Any]] = (),
) -> tuple[list[tuple[str, Any]], grpc.ChannelCredentials | None]:
    """The channel options and, when TLS is used (``tls`` or any certificate given), its
    credentials (None: a plaintext channel). ``server_name`` overrides the name TLS checks."""
    extra = [*options]
    if server_name:
        extra.append(("grpc.ssl_target_name_override", server_name))
    opts = channel_options(max_message_bytes, backoff, extra)
    if tls or root_certificates is not None or certificate_chain is not None:
        return opts, channel_credentials(root_certificates, certificate_chain, private_key)
    return opts, None


def channel_credentials(
    root_certificates: bytes | str | Path | None,
    certificate_chain: bytes | str | Path | None = None,
    private_key: bytes | str | Path | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials; certificates as PEM bytes or paths to PEM files (None: system roots)."""
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(root_certificates),
        private_key=_pem(private_key),
        certificate_chain=_pem(certificate_chain),
    )


def _pem(value: bytes | str | Path | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter for retries on UNAVAILABLE."""

    retries: int = 8
    initial: float = 0.1
    maximum: float = 5.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.maximum, self.initial * (2**attempt)))

    def retry_delay(self, error: grpc.RpcError, attempt: int) -> float | None:
        """How long to wait before retry number ``attempt`` + 1 after ``error``; None: give up
        (not UNAVAILABLE, or no retries left)."""
        return self.delay(attempt) if is_retryable(error) and attempt < self.retries else None


def is_retryable(error: grpc.RpcError) -> bool:
    code = getattr(error, "code", None)
    return callable(code) and code() == grpc.StatusCode.UNAVAILABLE


class StreamFeed:
    """The requests of one classify_stream call, across the stream's retries.

    Batches are turned into requests (sequence numbers 0, 1, ...) as the stream needs them; the
    requests sent and not yet answered are kept (at most the stream's window, plus one), so a
    stream that fails with UNAVAILABLE is retried by sending them again, then the rest. Once a
    response has arrived, the retried stream names the taxonomy version that answered it, so every
    result of one call is decided by one version. Each attempt is a ``generation``: an older
    attempt's request iterator that is still running takes nothing more from the batches.
    """

    def __init__(self, batches: Any, *, taxonomy: TaxonomyLike, options: service_pb2.ResultOptions) -> None:
        self._batches = batches
        self._source: Any = None
        self._ref = taxonomy_ref(taxonomy)
        self._options = options
        self._pending: deque[service_pb2.ClassifyRequest] = deque()
        self._sequence = 0
        self._generation = 0
        self._lock = threading.Lock()  # pending requests and the generation (held briefly)
        self._source_lock = threading.Lock()  # reading the batches (held while the caller's iterator runs)
        self._alock: asyncio.Lock | None = None
        self._pulling: asyncio.Future[Any] | None = None

    def restart(self) -> tuple[int, list[service_pb2.ClassifyRequest]]:
        """A new attempt: its generation and the unanswered requests to send first (the first of
        them names the taxonomy). Waits for a batch being read by an older attempt, so that it is
        sent again too."""
        with self._source_lock, self._lock:
            self._generation += 1
            resend = list(self._pending)
        if resend:
            resend[0] = self._first(resend[0])
        return self._generation, resend

    def _first(self, request: service_pb2.ClassifyRequest) -> service_pb2.ClassifyRequest:
        first = service_pb2.ClassifyRequest()
        first.CopyFrom(request)
        if self._ref is None:
            first.ClearField("taxonomy")
        else:
            first.taxonomy.CopyFrom(self._ref)
        return first

    def _add(self, item: BatchLike, first: bool) -> service_pb2.ClassifyRequest:
        request = classify_request(item, options=self._options, sequence=self._sequence)
        self._sequence += 1
        with self._lock:
            self._pending.append(request)
        return self._first(request) if first else request

    def next_request(self, generation: int, first: bool) -> service_pb2.ClassifyRequest | None:
        """The next batch's request for attempt ``generation`` (None: no more, or a newer attempt).
        Results keep arriving while the caller's iterator takes its time."""
        with self._source_lock:
            if generation != self._generation:
                return None
            if self._source is None:
                self._source = iter(self._batches)
            for item in self._source:
                return self._add(item, first)
            return None

    def requests(self, generation: int, resend: list[service_pb2.ClassifyRequest]
                 ) -> Iterator[service_pb2.ClassifyRequest]:
        """Attempt ``generation``'s requests: ``resend``, then the next batches'."""
        yield from resend
        first = not resend
        while (request := self.next_request(generation, first)) is not None:
            first = False
            yield request

    async def arequests(self, generation: int, resend: list[service_pb2.ClassifyRequest]
                        ) -> AsyncIterator[service_pb2.ClassifyRequest]:
        """requests() for the async client."""
        for again in resend:
            yield again
        first = not resend
        while (request := await self.anext_request(generation, first)) is not None:
            first = False
            yield request

    async def anext_request(self, generation: int, first: bool) -> service_pb2.ClassifyRequest | None:
        """next_request for the async client; batches may be an async iterable. A batch being read
        when its attempt is cancelled is kept for the next attempt."""
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            if generation != self._generation:
                return None
            if self._source is None:
                self._source = _aiter_of(self._batches)
            pulling = self._pulling
            if pulling is None:
                pulling = self._pulling = asyncio.ensure_future(self._source.__anext__())
            try:
                item = await asyncio.shield(pulling)
            except StopAsyncIteration:
                return None
            finally:
                if pulling.done():
                    self._pulling = None
            return self._add(item, first)

    def answered(self, response: service_pb2.ClassifyResponse) -> ClassifyResult:
        """Record a response (its request is no longer pending; the version is pinned)."""
        with self._lock:
            if self._pending:
                self._pending.popleft()
        result = ClassifyResult.from_proto(response)
        self._ref = taxonomy_pb2.TaxonomyRef(name=result.taxonomy.name, version=result.taxonomy.version)
        return result


async def _aiter_of(batches: Any) -> AsyncIterator[Any]:
    if hasattr(batches, "__aiter__"):
        async for item in batches:
            yield item
    else:
        for item in batches:
            yield item


class StderrProgress:
    """A one-line progress display on stderr: samples done, share and rate."""

    def __init__(self, label: str = "classified") -> None:
        self.label = label
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if not final and now - self.last < 0.2:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        share = f"/{total:,} ({100 * done / max(total, 1):.0f}%)" if total is not None else ""
        end = "\n" if final else ""
        print(f"\r{self.label} {done:,}{share} at {rate:,.0f}/s", end=end, file=sys.stderr, flush=True)


def progress_callback(progress: ProgressLike) -> Callable[[int, int | None], None] | None:
    if progress is True:
        return StderrProgress()
    if progress is False or progress is None:
        return None
    return progress


def encode_health_request(service: str) -> bytes:
    """grpc.health.v1.HealthCheckRequest {string service = 1}, without a grpc-health dependency."""
    data = service.encode()
    return (b"\x0a" + varint(len(data)) + data) if data else b""


def decode_health_status(data: bytes) -> str:
    """The ServingStatus name of a grpc.health.v1.HealthCheckResponse {ServingStatus status = 1}."""
    names = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
    value = 0
    if data[:1] == b"\x08":
        shift = 0
        for byte in data[1:]:
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
    return names.get(value, str(value))
