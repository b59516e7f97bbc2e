"""The errortaxa.v1.ErrorTaxa servicer: requests in, engine calls, responses out. No rule logic."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import numpy as np
from errortaxa.engine import SampleBatch, evaluate, explain
from errortaxa.engine.errors import ErrorTaxaError
from errortaxa.server import convert, sizes
from errortaxa.server.config import ServerConfig
from errortaxa.server.datasets import DatasetRegistry, predictions_batch
from errortaxa.server.errors import ServiceError, from_error, invalid, problem_proto
from errortaxa.server.interceptor import current_identity
from errortaxa.server.logs import STANDARD_KEYS
from errortaxa.server.metrics import Metrics
from errortaxa.server.providers import ServerProviders
from errortaxa.server.taxonomies import UPLOAD_NAME, Entry, TaxonomyRegistry, info_of
from errortaxa.v1 import service_pb2, service_pb2_grpc, taxonomy_pb2

log = logging.getLogger("errortaxa.server")
RESERVED_LOG_KEYS = STANDARD_KEYS | {"action"}
REPLICA_KEY = "errortaxa-replica"  # trailing metadata: the server (replica) that answered
audit_log = logging.getLogger("errortaxa.audit")

R = TypeVar("R")


def handled(method: Callable[..., R]) -> Callable[..., R]:
    """Turn ServiceError, and engine errors by their kind, into the call's status; log anything
    unexpected as INTERNAL."""

    @functools.wraps(method)
    def wrapper(self: Service, request: Any, context: grpc.ServicerContext) -> R:
        context.set_trailing_metadata(self.trailing)
        try:
            return method(self, request, context)
        except ServiceError as exc:
            exc.abort(context)
        except ErrorTaxaError as exc:
            from_error(exc).abort(context)
        except Exception as exc:
            log.exception("internal error", extra={"method": method.__name__})
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")

    return wrapper


def _ref(msg: Any) -> taxonomy_pb2.TaxonomyRef | None:
    return msg.taxonomy if msg.HasField("taxonomy") else None


class Service(service_pb2_grpc.ErrorTaxaServicer):
    def __init__(self, config: ServerConfig, registry: TaxonomyRegistry, datasets: DatasetRegistry,
                 metrics: Metrics, providers: ServerProviders, *, replica: str = "") -> None:
        self.trailing = ((REPLICA_KEY, replica),) if replica else ()  # every answer names the replica
        self.config = config
        self.providers = providers
        self.registry = registry
        self.datasets = datasets
        self.metrics = metrics
        self._record_bounds: dict[str, sizes.RecordBound] = {}  # content hash -> its largest record
        self._bounds_lock = threading.Lock()

    # -- classification ----------------------------------------------------------------------
    def _batch(self, entry: Entry, request: Any) -> tuple[Any, Any, Any]:
        """(SampleBatch, providers, dataset rows or None) of a Classify or Explain request."""
        kind = request.WhichOneof("input")
        if kind == "samples":
            batch = convert.batch_from_columns(request.samples, entry.num_classes, self.config.max_batch)
            rows = None
        elif kind == "dataset":
            dataset = self.datasets.get(request.dataset.dataset)
            batch, rows = predictions_batch(dataset, request.dataset)
            convert.check_batch_size(len(batch), self.config.max_batch, "dataset.pred", "predictions")
            convert.validate(batch, entry.num_classes, "dataset")
        else:
            raise invalid("the request has neither samples nor dataset", field="input", reason="MISSING_FIELD")
        providers = convert.request_providers(getattr(request, kind), batch, entry.providers, entry.providers_needed,
                                              self.providers.factories, entry.num_classes, kind)
        return batch, providers, rows

    def _classify(self, entry: Entry, request: service_pb2.ClassifyRequest, method: str
                  ) -> service_pb2.ClassifyResponse:
        batch, providers, rows = self._batch(entry, request)
        info = entry.info(active=entry is self.registry.active, full=False)
        self._check_response_bound(entry, request, batch, rows, info.ByteSize())
        decisions = evaluate(entry.compiled, batch, providers or None, validate=False)
        response = service_pb2.ClassifyResponse(taxonomy=info, sequence=request.sequence)
        convert.fill_decisions(response, decisions, request.options)
        if rows is not None:
            response.rows.extend(rows.tolist())
        if request.options.summary:
            response.summary.CopyFrom(convert.summary_message(decisions))
        sizes.check_response(response, request.options, self.config.max_message_mb)
        self.metrics.add_samples(method, len(batch))
        return response

    def _check_response_bound(self, entry: Entry, request: service_pb2.ClassifyRequest, batch: SampleBatch,
                              rows: np.ndarray | None, info_bytes: int) -> None:
        """Refuse (RESOURCE_EXHAUSTED) before the work a request whose response could be over the
        message limit (sizes.response_bound: the request's shape, the taxonomy's largest record)."""
        with self._bounds_lock:
            bound = self._record_bounds.get(entry.compiled.content_hash)
            if bound is None:
                if len(self._record_bounds) >= 64:
                    self._record_bounds.pop(next(iter(self._record_bounds)))
                bound = self._record_bounds[entry.compiled.content_hash] = sizes.record_bound(entry.compiled)
        source = getattr(request, request.WhichOneof("input") or "samples")
        sent = source.oov.evidence_json if source.HasField("oov") else ()
        size = info_bytes + sizes.response_bound(bound, batch, request.options, rows=rows,
                                                 sent_evidence=sent)
        if size > self.config.max_message_mb * 2**20:
            raise sizes.too_large(size, self.config.max_message_mb, len(batch), before=True)

    @handled
    def Classify(self, request: service_pb2.ClassifyRequest, context: grpc.ServicerContext
                 ) -> service_pb2.ClassifyResponse:
        return self._classify(self.registry.resolve(_ref(request)), request, "Classify")

    def ClassifyStream(self, request_iterator: Iterator[service_pb2.ClassifyRequest],
                       context: grpc.ServicerContext) -> Iterator[service_pb2.ClassifyResponse]:
        entry: Entry | None = None
        sequence = -1
        context.set_trailing_metadata(self.trailing)
        try:
            for request in request_iterator:
                sequence += 1
                if entry is None:  # the stream keeps the version it started with
                    entry = self.registry.resolve(_ref(request))
                yield self._classify(entry, request, "ClassifyStream")
        except (ServiceError, ErrorTaxaError) as exc:
            error = exc if isinstance(exc, ServiceError) else from_error(exc)
            error.message = f"stream batch {sequence}: {error.message}"
            error.abort(context)
        except Exception as exc:
            if not context.is_active():
                return  # the client went away
            log.exception("internal error", extra={"method": "ClassifyStream", "batch": sequence})
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

    @handled
    def Explain(self, request: service_pb2.ExplainRequest, context: grpc.ServicerContext
                ) -> service_pb2.ExplainResponse:
        entry = self.registry.resolve(_ref(request))
        batch, providers, _ = self._batch(entry, request)
        if not 0 <= request.index < len(batch):
            raise invalid(f"index {request.index} is outside 0..{len(batch) - 1}", field="index",
                          reason="OUT_OF_RANGE", sample_index=request.index)
        explanation = explain(entry.compiled, batch, request.index, providers or None, validate=False)
        record = explanation.record()
        return service_pb2.ExplainResponse(
            taxonomy=entry.info(active=entry is self.registry.active, full=False),
            traces=convert.trace_messages(explanation.traces),
            record_json=convert.dumps(record),
            record=convert.struct(record),
        )

    # -- taxonomies --------------------------------------------------------------------------
    @handled
    def ListTaxonomies(self, request: service_pb2.ListTaxonomiesRequest, context: grpc.ServicerContext
                       ) -> service_pb2.ListTaxonomiesResponse:
        return service_pb2.ListTaxonomiesResponse(taxonomies=self.registry.infos(request.name))

    @handled
    def GetTaxonomy(self, request: service_pb2.GetTaxonomyRequest, context: grpc.ServicerContext
                    ) -> service_pb2.GetTaxonomyResponse:
        entry = self.registry.resolve(_ref(request))
        return service_pb2.GetTaxonomyResponse(taxonomy=entry.info(active=entry is self.registry.active),
                                               yaml=entry.yaml)

    @handled
    def ValidateTaxonomy(self, request: service_pb2.ValidateTaxonomyRequest, context: grpc.ServicerContext
                         ) -> service_pb2.ValidateTaxonomyResponse:
        compiled, problems = self.registry.validate(request.yaml, request.filename or UPLOAD_NAME)
        response = service_pb2.ValidateTaxonomyResponse(
            ok=compiled is not None, problems=[problem_proto(p) for p in problems])
        if compiled is not None:
            response.taxonomy.CopyFrom(info_of(compiled))
        return response

    def _audit(self, action: str, **what: Any) -> None:
        """Count and log a change (its durable record is in the store's audit log)."""
        entry = {"action": action, "who": current_identity().name, **what}
        self.metrics.change(action)
        audit_log.info(action, extra={k: v for k, v in entry.items() if k not in RESERVED_LOG_KEYS})

    @handled
    def PutTaxonomy(self, request: service_pb2.PutTaxonomyRequest, context: grpc.ServicerContext
                    ) -> service_pb2.PutTaxonomyResponse:
        who = current_identity().name
        entry, created = self.registry.put(request.yaml, request.filename or UPLOAD_NAME, who=who)
        self._audit("put", taxonomy=entry.name, version=entry.version, content_hash=entry.compiled.content_hash,
                    new=created)
        if request.activate:
            self._activate(entry.name, entry.version)
        return service_pb2.PutTaxonomyResponse(
            taxonomy=entry.info(active=entry is self.registry.active), created=created,
            problems=[problem_proto(p) for p in entry.compiled.warnings])

    def _activate(self, name: str, version: str) -> tuple[Entry, Entry]:
        entry, previous = self.registry.activate(taxonomy_pb2.TaxonomyRef(name=name, version=version),
                                                 who=current_identity().name)
        self._audit("activate", taxonomy=entry.name, version=entry.version,
                    content_hash=entry.compiled.content_hash,
                    previous={"taxonomy": previous.name, "version": previous.version})
        return entry, previous

    @handled
    def ActivateTaxonomy(self, request: service_pb2.ActivateTaxonomyRequest, context: grpc.ServicerContext
                         ) -> service_pb2.ActivateTaxonomyResponse:
        ref = _ref(request)
        if ref is None or not ref.name or not ref.version:
            raise invalid("name the taxonomy and the version to activate (both are required)",
                          field="taxonomy.version" if ref is not None and ref.name else "taxonomy.name",
                          reason="MISSING_FIELD")
        entry, previous = self._activate(ref.name, ref.version)
        return service_pb2.ActivateTaxonomyResponse(
            taxonomy=entry.info(active=True),
            previous=taxonomy_pb2.TaxonomyRef(name=previous.name, version=previous.version))

    @handled
    def DeleteTaxonomy(self, request: service_pb2.DeleteTaxonomyRequest, context: grpc.ServicerContext
                       ) -> service_pb2.DeleteTaxonomyResponse:
        ref = _ref(request)
        if ref is None or not ref.name or not ref.version:
            raise invalid("name the taxonomy and version to delete", field="taxonomy", reason="MISSING_FIELD")
        stored = self.registry.delete(ref, who=current_identity().name)
        self._audit("delete", taxonomy=stored.name, version=stored.version, content_hash=stored.content_hash)
        return service_pb2.DeleteTaxonomyResponse()

    # -- datasets ----------------------------------------------------------------------------
    @handled
    def ListDatasets(self, request: service_pb2.ListDatasetsRequest, context: grpc.ServicerContext
                     ) -> service_pb2.ListDatasetsResponse:
        return service_pb2.ListDatasetsResponse(datasets=[d.info() for d in self.datasets.all()])

    @handled
    def GetDataset(self, request: service_pb2.GetDatasetRequest, context: grpc.ServicerContext
                   ) -> service_pb2.GetDatasetResponse:
        dataset = self.datasets.get(request.name)
        response = service_pb2.GetDatasetResponse(dataset=dataset.info())
        if request.include_images:
            response.images.extend(dataset.labels.images)
        return response

    # -- providers ---------------------------------------------------------------------------
    @handled
    def ListProviders(self, request: service_pb2.ListProvidersRequest, context: grpc.ServicerContext
                      ) -> service_pb2.ListProvidersResponse:
        return service_pb2.ListProvidersResponse(providers=self.providers.infos())

    @handled
    def RegisterDataset(self, request: service_pb2.RegisterDatasetRequest, context: grpc.ServicerContext
                        ) -> service_pb2.RegisterDatasetResponse:
        dataset = self.datasets.register(request.name, request.path, replace=request.replace,
                                         who=current_identity().name)
        self._audit("register_dataset", dataset=dataset.name, path=dataset.source, size=len(dataset.labels))
        return service_pb2.RegisterDatasetResponse(dataset=dataset.info())
