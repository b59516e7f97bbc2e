"""The errortaxa.v1.ErrorTaxa servicer: requests in, engine calls, responses out. No rule logic."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from errortaxa.engine import evaluate, explain
from errortaxa.engine.errors import ErrorTaxaError
from errortaxa.server import convert
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
#: Lower bounds of a ClassifyResponse's size (bytes per sample): the value, rule and witness columns
#: of each axis; a JSON record (~450 bytes for the default taxonomy); the evidence JSON.
RESPONSE_BYTES_PER_SAMPLE = 3
RECORD_BYTES = 200
EVIDENCE_BYTES = 20


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
        source = getattr(request, kind)
        oov = source.oov if source.HasField("oov") else None
        providers = convert.request_providers(oov, batch, entry.providers, entry.providers_needed,
                                              self.providers.factories, entry.num_classes, f"{kind}.oov")
        return batch, providers, rows

    def _classify(self, entry: Entry, request: service_pb2.ClassifyRequest, method: str
                  ) -> service_pb2.ClassifyResponse:
        batch, providers, rows = self._batch(entry, request)
        self._check_response_size(len(batch), len(entry.compiled.axes), request.options)
        decisions = evaluate(entry.compiled, batch, providers or None, validate=False)
        response = service_pb2.ClassifyResponse(
            taxonomy=entry.info(active=entry is self.registry.active, full=False), sequence=request.sequence)
        convert.fill_decisions(response, decisions, request.options)
        if rows is not None:
            response.rows.extend(rows.tolist())
        if request.options.summary:
            response.summary.CopyFrom(convert.summary_message(decisions))
        self.metrics.add_samples(method, len(batch))
        return response

    def _check_response_size(self, n: int, axes: int, options: service_pb2.ResultOptions) -> None:
        """Refuse (RESOURCE_EXHAUSTED) before computing a response that cannot be under the message limit:
        the smallest it can be is RESPONSE_BYTES_PER_SAMPLE per sample and axis, RECORD_BYTES more with
        records, EVIDENCE_BYTES more with evidence."""
        per_sample = RESPONSE_BYTES_PER_SAMPLE * axes + RECORD_BYTES * options.records \
            + EVIDENCE_BYTES * options.evidence
        limit = self.config.max_message_mb * 1024 * 1024
        if n * per_sample > limit:
            raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"the response for {n} samples would be over {n * per_sample // 2**20} MB, more than "
                               f"max_message_mb = {self.config.max_message_mb}: send fewer samples per call "
                               "(ClassifyStream) or ask for fewer options", field="options",
                               reason="RESPONSE_TOO_LARGE")

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

    @handled
    def RegisterDataset(self, request: service_pb2.RegisterDatasetRequest, context: grpc.ServicerContext
                        ) -> service_pb2.RegisterDatasetResponse:
        dataset = self.datasets.register(request.name, request.path, replace=request.replace,
                                         who=current_identity().name)
        self._audit("register_dataset", dataset=dataset.name, path=dataset.source, size=len(dataset.labels))
        return service_pb2.RegisterDatasetResponse(dataset=dataset.info())
