"""Every call of the ErrorTaxa client, described once for Client and AsyncClient.

An entry of :class:`Rpcs` names the RPC and has a builder, whose signature is the public method's:
it turns the call's arguments into the request (and deadline), and the entry's ``parse`` turns the
response into the result. The kind of the entry says how it runs:

- :class:`Unary`: one request, one response; retried on UNAVAILABLE with the client's backoff.
- :class:`Stream`: ClassifyStream; at most ``max_in_flight`` requests ahead of the results, and on
  UNAVAILABLE a new stream that sends the unanswered requests again (see ``_core.StreamFeed``).
- :class:`Batched`: a Stream whose results are joined into one (an empty input: one unary call).

``Client`` (client.py) and ``AsyncClient`` (aio.py) are the two callers: each runs the three
kinds, with blocking grpc or grpc.aio. An entry read on a Client is a method returning the result,
on an AsyncClient a method returning an awaitable (or an async iterator for a Stream). Adding an
RPC: the method in the .proto with its ``(errortaxa.v1.rpc)`` declaration (regenerated), a builder
and an entry here, and the server's handler. Each entry's ``method`` carries the declaration
(``authorization``, ``idempotent``), read from the descriptor.
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, overload

import numpy as np
from errortaxa.client import _core
from errortaxa.client._core import BatchLike, ProgressLike, TaxonomyLike
from errortaxa.client.columns import OovInputs, ProviderInputsLike, dataset_predictions
from errortaxa.client.results import (
    ClassifyResult,
    DatasetInfo,
    Explanation,
    StoredTaxonomy,
    TaxonomyInfo,
    Validation,
)
from errortaxa.v1 import options_pb2, service_pb2
from google.protobuf import message_factory

P = ParamSpec("P")
Out = TypeVar("Out")
_SERVICE = service_pb2.DESCRIPTOR.services_by_name["ErrorTaxa"]
#: The (errortaxa.v1.rpc) method option (the generated stub types it as a plain FieldDescriptor).
_DECLARATION: Any = options_pb2.rpc


@dataclass(frozen=True)
class Call:
    """A unary call's request and deadline in seconds (None: the client's default)."""

    request: Any
    timeout: float | None


@dataclass(frozen=True)
class StreamCall:
    """A ClassifyStream call: its requests, window, deadline and progress."""

    feed: _core.StreamFeed
    max_in_flight: int
    timeout: float | None
    report: Callable[[int, int | None], None] | None
    total: int | None


@dataclass(frozen=True)
class Batches:
    """A Batched call: the stream, and the unary call that answers when the input is empty."""

    stream: StreamCall
    fallback: Call | None


@dataclass(frozen=True)
class Method:
    """Where calls go: the method path, the (de)serializers of its messages, whether it streams, and
    what its declaration in the .proto (the ``(errortaxa.v1.rpc)`` option) says: who may call it
    (``authorization``: public, read, admin; "undeclared": the server refuses it) and whether the
    same request may be sent again after an unknown outcome (``idempotent``: what a retry policy
    may retry)."""

    path: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    streaming: bool = False
    authorization: str = "undeclared"
    idempotent: bool = False

    @classmethod
    def of(cls, name: str) -> Method:
        """Method ``name`` of the errortaxa.v1.ErrorTaxa service, as the .proto declares it."""
        descriptor = _SERVICE.methods_by_name[name]
        response = message_factory.GetMessageClass(descriptor.output_type)
        options = descriptor.GetOptions()
        declared = options.HasExtension(_DECLARATION)
        rpc: options_pb2.RpcDeclaration = options.Extensions[_DECLARATION]
        level = options_pb2.RpcDeclaration.Authorization.Name(rpc.authorization).lower() \
            if declared and rpc.authorization else "undeclared"
        return cls(f"/{_SERVICE.full_name}/{name}", _serialize, response.FromString,
                   descriptor.client_streaming and descriptor.server_streaming, level,
                   declared and rpc.idempotent)


def methods() -> dict[str, Method]:
    """Every method of the errortaxa.v1.ErrorTaxa service by path, as the .proto declares it (a
    retry policy takes the ``idempotent`` ones)."""
    found = (Method.of(m.name) for m in _SERVICE.methods)
    return {m.path: m for m in found}


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def _identity(data: bytes) -> bytes:
    return data


#: grpc.health.v1.Health/Check with bytes in and out (no grpcio-health-checking dependency).
HEALTH = Method(_core.HEALTH_METHOD, _identity, _identity, authorization="public", idempotent=True)


def _bind(run: Callable[[Any, tuple[Any, ...], dict[str, Any]], Any], entry: Any) -> Callable[..., Any]:
    """``entry``'s method on a caller: ``run(entry, args, kwargs)`` with the builder's signature and doc."""

    @functools.wraps(entry.build)
    def call(*args: Any, **kwargs: Any) -> Any:
        return run(entry, args, kwargs)

    return call


class Unary(Generic[P, Out]):
    """A unary RPC: ``build`` makes the Call from the method's arguments, ``parse`` the result."""

    def __init__(self, method: str | Method, build: Callable[P, Call], parse: Callable[[Any], Out]) -> None:
        self.method = Method.of(method) if isinstance(method, str) else method
        if self.method.streaming:
            raise TypeError(f"{self.method.path} streams: describe it with Stream")
        self.build = build
        self.parse = parse
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, caller: None, owner: type) -> Unary[P, Out]: ...
    @overload
    def __get__(self, caller: SyncCaller, owner: type) -> Callable[P, Out]: ...
    @overload
    def __get__(self, caller: AsyncCaller, owner: type) -> Callable[P, Awaitable[Out]]: ...
    def __get__(self, caller: Any, owner: type) -> Any:
        return self if caller is None else _bind(caller._unary, self)


class Stream(Generic[P]):
    """A bidirectional stream of ClassifyRequest / ClassifyResponse: ``build`` makes the
    StreamCall; one ClassifyResult per batch, in order."""

    def __init__(self, method: str, build: Callable[P, StreamCall]) -> None:
        self.method = Method.of(method)
        if not self.method.streaming:
            raise TypeError(f"{self.method.path} does not stream: describe it with Unary")
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, caller: None, owner: type) -> Stream[P]: ...
    @overload
    def __get__(self, caller: SyncCaller, owner: type) -> Callable[P, Iterator[ClassifyResult]]: ...
    @overload
    def __get__(self, caller: AsyncCaller, owner: type) -> Callable[P, AsyncIterator[ClassifyResult]]: ...
    def __get__(self, caller: Any, owner: type) -> Any:
        return self if caller is None else _bind(caller._stream, self)


class Batched(Generic[P]):
    """Any number of samples over ``stream``, joined into one ClassifyResult; an empty input is
    answered by the unary ``fallback`` (so the result still names the taxonomy's axes)."""

    def __init__(self, build: Callable[P, Batches], *, stream: Stream[Any],
                 fallback: Unary[Any, ClassifyResult]) -> None:
        self.build = build
        self.stream = stream
        self.fallback = fallback
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, caller: None, owner: type) -> Batched[P]: ...
    @overload
    def __get__(self, caller: SyncCaller, owner: type) -> Callable[P, ClassifyResult]: ...
    @overload
    def __get__(self, caller: AsyncCaller, owner: type) -> Callable[P, Awaitable[ClassifyResult]]: ...
    def __get__(self, caller: Any, owner: type) -> Any:
        return self if caller is None else _bind(caller._batched, self)


# -- builders: the public methods' signatures and docstrings -------------------------------------
def _health(service: str = "", *, timeout: float | None = 5.0) -> Call:
    """The server's grpc.health.v1 status: "SERVING", "NOT_SERVING", ..."""
    return Call(_core.encode_health_request(service), timeout)


def _classify(
    samples: BatchLike = None,
    *,
    taxonomy: TaxonomyLike = None,
    records: bool = False,
    with_evidence: bool = False,
    summary: bool = False,
    timeout: float | None = None,
    **columns: Any,
) -> Call:
    """Classify one batch: ``samples`` (Samples, an engine SampleBatch) or columns as keywords
    (``target``, ``pred``, ``labels`` or ``label_offsets`` + ``label_values``,
    ``problematic``, ``images``, ``ids``), lists or numpy arrays, plus (also beside ``samples``)
    ``provider_inputs``, the per-sample inputs of feature providers by name
    (``{"oov": {"embeddings": array}}``; list_providers() says what each one takes), and the
    older OOV keywords: ``evidence`` (per-sample JSON answers), ``oov_embeddings`` (float32
    [N, D] image embeddings), ``knn_classes`` ([N, k] ints, -1 = padding) and ``image_bytes``
    (encoded image files, b"" or None = none); see docs/SERVICE.md.
    ``records`` asks for the engine's JSON record per sample, ``with_evidence`` for the evidence
    of each decision, ``summary`` for the batch summary."""
    item = _core.batch_item(samples, columns)
    options = _core.result_options(records=records, evidence=with_evidence, summary=summary)
    return Call(_core.classify_request(item, taxonomy=taxonomy, options=options), timeout)


def _classify_dataset(
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
    provider_inputs: ProviderInputsLike | None = None,
    timeout: float | None = None,
    **oov: Any,
) -> Call:
    """Classify a model's predictions (top-1 ``pred`` or ``logits``) on a dataset the server
    holds, in the dataset's order from row ``offset`` or keyed by ``images``; ``provider_inputs``
    and ``oov``: the provider inputs and OOV keywords of classify (one row per prediction)."""
    item = dataset_predictions(dataset, pred=pred, logits=logits, images=images, offset=offset,
                               oov=OovInputs.build(**oov), provider_inputs=provider_inputs)
    options = _core.result_options(records=records, evidence=with_evidence, summary=summary)
    return Call(_core.classify_request(item, taxonomy=taxonomy, options=options), timeout)


def _classify_stream(
    batches: Iterable[BatchLike] | AsyncIterable[BatchLike],
    *,
    taxonomy: TaxonomyLike = None,
    records: bool = False,
    with_evidence: bool = False,
    total: int | None = None,
    progress: ProgressLike = None,
    max_in_flight: int = 4,
    timeout: float | None = None,
) -> StreamCall:
    """Classify a stream of batches over one ClassifyStream call; yields one result per batch,
    in order, all decided by the taxonomy version the stream started with. At most
    ``max_in_flight`` batches are sent ahead of the results read, so memory stays flat
    however long the input (an async iterable of batches: AsyncClient only). ``progress``: True
    for a line on stderr, or a callable ``(samples_done, total)``.

    A stream that fails with UNAVAILABLE is retried like a unary call (``retries``, backoff):
    a new stream sends the batches not yet answered again (at most ``max_in_flight`` + 1 are
    kept), then the rest; results already yielded are not repeated. Once a result has arrived,
    the new stream names that result's taxonomy version, so every result still comes from
    one version (a version the restarted server no longer has fails with NOT_FOUND). The
    retry count starts again after each result."""
    options = _core.result_options(records=records, evidence=with_evidence, summary=False)
    feed = _core.StreamFeed(batches, taxonomy=taxonomy, options=options)
    return StreamCall(feed, max(1, max_in_flight), timeout, _core.progress_callback(progress), total)


def _classify_many(
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
) -> Batches:
    """Classify any number of samples over one stream in batches of ``batch_size``; returns
    one result (every part decided by the same taxonomy version)."""
    item = _core.many_samples(samples, columns)
    stream = _classify_stream(_core.column_batches(item, batch_size), taxonomy=taxonomy, records=records,
                              with_evidence=with_evidence, total=len(item), progress=progress,
                              max_in_flight=max_in_flight, timeout=timeout)
    return Batches(stream, _classify(item, taxonomy=taxonomy))


def _classify_dataset_many(
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
    provider_inputs: ProviderInputsLike | None = None,
    timeout: float | None = None,
    **oov: Any,
) -> Batches:
    """Like classify_dataset for any number of predictions, streamed in batches."""
    chunks, total = _core.dataset_chunks(dataset, pred=pred, logits=logits, images=images,
                                         batch_size=batch_size, oov=oov, provider_inputs=provider_inputs)
    stream = _classify_stream(chunks, taxonomy=taxonomy, records=records, with_evidence=with_evidence,
                              total=total, progress=progress, max_in_flight=max_in_flight, timeout=timeout)
    return Batches(stream, None)


def _explain(
    samples: BatchLike = None,
    *,
    index: int = 0,
    taxonomy: TaxonomyLike = None,
    timeout: float | None = None,
    **columns: Any,
) -> Call:
    """Every rule tried on sample ``index`` of the given samples (or DatasetPredictions)."""
    return Call(_core.explain_request(_core.batch_item(samples, columns), index=index, taxonomy=taxonomy), timeout)


def _list_taxonomies(name: str = "", *, timeout: float | None = None) -> Call:
    """The builtin taxonomy and the stored versions (of taxonomy ``name`` when given)."""
    return Call(service_pb2.ListTaxonomiesRequest(name=name), timeout)


def _get_taxonomy(taxonomy: TaxonomyLike = None, *, timeout: float | None = None) -> Call:
    """The metadata and YAML text of a version (default: the active one)."""
    return Call(service_pb2.GetTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy)), timeout)


def _active_taxonomy(*, timeout: float | None = None) -> Call:
    """The metadata of the active taxonomy version."""
    return Call(service_pb2.GetTaxonomyRequest(), timeout)


def _validate_taxonomy(yaml: str, *, filename: str = "", timeout: float | None = None) -> Call:
    """Dry run: compile YAML text on the server and return every problem."""
    return Call(service_pb2.ValidateTaxonomyRequest(yaml=yaml, filename=filename), timeout)


def _put_taxonomy(yaml: str, *, activate: bool = False, filename: str = "", timeout: float | None = None) -> Call:
    """Admin: compile and store a version (raises InvalidArgument with every problem)."""
    return Call(service_pb2.PutTaxonomyRequest(yaml=yaml, activate=activate, filename=filename), timeout)


def _activate_taxonomy(taxonomy: TaxonomyLike, *, timeout: float | None = None) -> Call:
    """Admin: make ``name@version`` the default."""
    return Call(service_pb2.ActivateTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy)), timeout)


def _delete_taxonomy(taxonomy: TaxonomyLike, *, timeout: float | None = None) -> Call:
    """Admin: delete ``name@version`` (not the active one)."""
    return Call(service_pb2.DeleteTaxonomyRequest(taxonomy=_core.taxonomy_ref(taxonomy)), timeout)


def _list_datasets(*, timeout: float | None = None) -> Call:
    """The datasets the server holds."""
    return Call(service_pb2.ListDatasetsRequest(), timeout)


def _get_dataset(name: str, *, timeout: float | None = None) -> Call:
    """The metadata of dataset ``name``."""
    return Call(service_pb2.GetDatasetRequest(name=name), timeout)


def _dataset_images(name: str, *, timeout: float | None = None) -> Call:
    """The image ids of a dataset, in its order (the order of dataset predictions)."""
    return Call(service_pb2.GetDatasetRequest(name=name, include_images=True), timeout)


def _register_dataset(name: str, path: str, *, replace: bool = False, timeout: float | None = None) -> Call:
    """Admin: load a label file lying on the server and hold it as ``name``."""
    return Call(service_pb2.RegisterDatasetRequest(name=name, path=path, replace=replace), timeout)


def _list_providers(*, timeout: float | None = None) -> Call:
    """The feature providers installed on the server, by name: each one's summary, whether the server
    runs it (``configured``), its ``tests`` (description and params JSON Schema) and ``inputs``
    (the JSON Schema of the columns that ``provider_inputs={NAME: {...}}`` may send)."""
    return Call(service_pb2.ListProvidersRequest(), timeout)


def _providers(response: service_pb2.ListProvidersResponse) -> dict[str, dict[str, Any]]:
    return {p.name: {**json.loads(p.schema_json), "summary": p.summary, "configured": p.configured}
            for p in response.providers}


def _taxonomy_and_yaml(response: service_pb2.GetTaxonomyResponse) -> tuple[TaxonomyInfo, str]:
    return TaxonomyInfo.from_proto(response.taxonomy), response.yaml


class Rpcs:
    """The table of calls (see the module docstring); the base of both callers, which set
    ``_channel`` (a grpc or grpc.aio channel) and ``_callables`` (an empty dict)."""

    _channel: Any
    _callables: dict[str, Any]

    def _callable(self, method: Method) -> Any:
        """The channel's multi-callable of ``method``, made once."""
        found = self._callables.get(method.path)
        if found is None:
            kind = self._channel.stream_stream if method.streaming else self._channel.unary_unary
            found = self._callables[method.path] = kind(method.path, request_serializer=method.encode,
                                                        response_deserializer=method.decode)
        return found

    health = Unary(HEALTH, _health, _core.decode_health_status)
    classify = Unary("Classify", _classify, ClassifyResult.from_proto)
    classify_dataset = Unary("Classify", _classify_dataset, ClassifyResult.from_proto)
    classify_stream = Stream("ClassifyStream", _classify_stream)
    classify_many = Batched(_classify_many, stream=classify_stream, fallback=classify)
    classify_dataset_many = Batched(_classify_dataset_many, stream=classify_stream, fallback=classify)
    explain = Unary("Explain", _explain, Explanation.from_proto)
    list_taxonomies = Unary("ListTaxonomies", _list_taxonomies,
                            lambda r: [TaxonomyInfo.from_proto(t) for t in r.taxonomies])
    get_taxonomy = Unary("GetTaxonomy", _get_taxonomy, _taxonomy_and_yaml)
    active_taxonomy = Unary("GetTaxonomy", _active_taxonomy, lambda r: TaxonomyInfo.from_proto(r.taxonomy))
    validate_taxonomy = Unary("ValidateTaxonomy", _validate_taxonomy, Validation.from_proto)
    put_taxonomy = Unary("PutTaxonomy", _put_taxonomy, StoredTaxonomy.from_proto)
    activate_taxonomy = Unary("ActivateTaxonomy", _activate_taxonomy, lambda r: TaxonomyInfo.from_proto(r.taxonomy))
    delete_taxonomy = Unary("DeleteTaxonomy", _delete_taxonomy, lambda r: None)
    list_datasets = Unary("ListDatasets", _list_datasets, lambda r: [DatasetInfo.from_proto(d) for d in r.datasets])
    get_dataset = Unary("GetDataset", _get_dataset, lambda r: DatasetInfo.from_proto(r.dataset))
    dataset_images = Unary("GetDataset", _dataset_images, lambda r: list(r.images))
    register_dataset = Unary("RegisterDataset", _register_dataset, lambda r: DatasetInfo.from_proto(r.dataset))
    list_providers = Unary("ListProviders", _list_providers, _providers)


def entries() -> Mapping[str, Unary[Any, Any] | Stream[Any] | Batched[Any]]:
    """The table: method name -> entry."""
    return {name: value for name, value in vars(Rpcs).items() if isinstance(value, (Unary, Stream, Batched))}


class SyncCaller(Rpcs, ABC):
    """Runs the entries with blocking calls (Client)."""

    @abstractmethod
    def _unary(self, rpc: Unary[Any, Out], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Out: ...

    @abstractmethod
    def _stream(self, rpc: Stream[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
                ) -> Iterator[ClassifyResult]: ...

    @abstractmethod
    def _batched(self, rpc: Batched[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> ClassifyResult: ...


class AsyncCaller(Rpcs, ABC):
    """Runs the entries with grpc.aio (AsyncClient)."""

    @abstractmethod
    async def _unary(self, rpc: Unary[Any, Out], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Out: ...

    @abstractmethod
    def _stream(self, rpc: Stream[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
                ) -> AsyncIterator[ClassifyResult]: ...

    @abstractmethod
    async def _batched(self, rpc: Batched[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
                       ) -> ClassifyResult: ...
