"""Start, drain and stop the server; ``errortaxa serve`` (main)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import grpc
from errortaxa.engine.language import limits
from errortaxa.server.admission import Admission
from errortaxa.server.auth import Tokens
from errortaxa.server.config import ConfigError, ServerConfig, load_config
from errortaxa.server.datasets import DatasetRegistry
from errortaxa.server.declarations import SERVICE_NAME
from errortaxa.server.errors import ServiceError
from errortaxa.server.interceptor import CallInterceptor
from errortaxa.server.logs import setup_logging
from errortaxa.server.metrics import Metrics, MetricsHTTPServer
from errortaxa.server.pgstore import PostgresStore
from errortaxa.server.propagation import StoreWatcher
from errortaxa.server.providers import ServerProviders
from errortaxa.server.reflection import enable_reflection
from errortaxa.server.service import Service
from errortaxa.server.store import Finding, Store, StoreError, TaxonomyStore
from errortaxa.server.taxonomies import TaxonomyRegistry
from errortaxa.v1 import service_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

log = logging.getLogger("errortaxa.server")
REFUSAL_SECONDS = 0.25  # at stop: how long calls arriving are still answered UNAVAILABLE
STREAM_END_SECONDS = 1.0  # at stop, once the grace is over: how long streams get to end UNAVAILABLE


def grpc_address(host: str, port: int) -> str:
    """``host:port``, an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


@dataclass
class RunningServer:
    """A started server. ``port`` is the bound port (useful with port 0)."""

    config: ServerConfig
    server: grpc.Server
    port: int
    health: health.HealthServicer
    registry: TaxonomyRegistry
    metrics: Metrics
    admission: Admission
    store: Store
    metrics_http: MetricsHTTPServer | None = None
    watcher: StoreWatcher | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        return grpc_address(self.config.host, self.port)

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_http.port if self.metrics_http is not None else None

    def drain(self, drain_seconds: float | None = None, grace: float | None = None) -> None:
        """Health NOT_SERVING (load balancers move away) while calls are still served for
        ``drain_seconds``; then stop accepting calls and give those in flight ``grace`` seconds."""
        drain = self.config.drain_seconds if drain_seconds is None else drain_seconds
        log.info("draining", extra={"drain_seconds": drain})
        self.health.enter_graceful_shutdown()
        if drain > 0:
            time.sleep(drain)
        self.stop(grace)

    def stop(self, grace: float | None = None) -> None:
        """Refuse new calls (UNAVAILABLE); calls in flight get ``grace`` seconds (default: config) to
        finish. Streams still open then end UNAVAILABLE at their next read (a batch being answered is
        sent first; they get STREAM_END_SECONDS). With a grace, calls already on the wire get their
        UNAVAILABLE for REFUSAL_SECONDS more; then the gRPC server stops."""
        if self._stopped.is_set():
            return
        self.health.enter_graceful_shutdown()
        grace = self.config.grace_seconds if grace is None else grace
        begun = time.monotonic()
        self.admission.refuse_new()  # UNAVAILABLE from here on, while the calls in flight finish
        if not self.admission.wait_idle(grace):
            self.admission.end_streams()  # grpc's stop would end them CANCELLED
            self.admission.wait_idle(STREAM_END_SECONDS, streams_only=True)
        if grace > 0:  # calls already on the wire get their UNAVAILABLE too (grpc would end them CANCELLED)
            time.sleep(REFUSAL_SECONDS)
        self.server.stop(max(grace - (time.monotonic() - begun), 0.0)).wait()
        if self.metrics_http is not None:
            self.metrics_http.close()
        if self.watcher is not None:
            self.watcher.stop()
        self.store.close()  # the file store's lock released
        self._stopped.set()
        log.info("stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopped (True) or ``timeout`` passes (False)."""
        return self._stopped.wait(timeout)


def open_store(config: ServerConfig) -> Store:
    """The configured store: a PostgreSQL URL (waits up to store_wait_seconds for the database),
    a directory (locked while serving) or memory. StoreError when it cannot be used."""
    if isinstance(config.store, str):
        return PostgresStore(config.store, pool_min=config.store_pool_min, pool_max=config.store_pool_max,
                             wait_seconds=config.store_wait_seconds, timeout_seconds=config.store_timeout_seconds)
    return TaxonomyStore(config.store, lock=True)


def build_server(config: ServerConfig) -> RunningServer:
    """Load the store and datasets, compile the active taxonomy, bind, start; health SERVING."""
    config.check()
    started = time.perf_counter()
    limits.configure(config.limits)
    store = open_store(config)
    try:
        return _build(config, store, started)
    except BaseException:
        store.close()
        raise


def _build(config: ServerConfig, store: Store, started: float) -> RunningServer:
    providers = ServerProviders(config.provider_configs)
    registry = TaxonomyRegistry(store, default_taxonomy=config.default_taxonomy, providers=providers.build,
                                declarations=providers.declarations)
    try:
        datasets = DatasetRegistry(store, config.datasets, config.data_dirs)
    except ServiceError as exc:
        raise ConfigError(f"dataset: {exc.message}") from None
    replica = config.replica or f"{socket.gethostname()}-{os.getpid()}"
    metrics = Metrics()
    metrics.replica = replica
    metrics.store = store.description
    metrics.dataset_problems = datasets.problems
    for finding in store.findings:  # the files of the store checked at opening, the active version chosen
        log.warning("store finding", extra={"path": finding.path, "problem": finding.problem,
                                                        "action": finding.action})
        metrics.store_findings.append((finding.path, finding.problem, finding.action))

    def active() -> tuple[str, str, str]:
        entry = registry.active  # read once: an Activate may swap it meanwhile
        return entry.name, entry.version, entry.compiled.content_hash

    metrics.active = active
    watcher = None
    if isinstance(store, PostgresStore):
        metrics.store_connected = store.connected.is_set
        watcher = StoreWatcher(store, registry, datasets, poll_seconds=config.store_poll_seconds)
    max_bytes = config.max_message_mb * 1024 * 1024
    admission = Admission(concurrency=config.concurrency, max_calls=config.max_concurrent_rpcs,
                          max_streams=config.max_streams, max_streams_per_client=config.max_streams_per_client,
                          idle_seconds=config.stream_idle_seconds)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=admission.threads, thread_name_prefix="errortaxa-rpc"),
        interceptors=[CallInterceptor(Tokens(config.read_tokens, config.admin_tokens,
                                             public_health=config.public_health), metrics, admission)],
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=4 * admission.threads,  # an outer guard; Admission refuses first
    )
    service_pb2_grpc.add_ErrorTaxaServicer_to_server(
        Service(config, registry, datasets, metrics, providers, replica=replica), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        enable_reflection(server, (SERVICE_NAME, health.SERVICE_NAME))
    address = grpc_address(config.host, config.port)
    if config.tls_cert is not None and config.tls_key is not None:
        credentials = grpc.ssl_server_credentials([(config.tls_key.read_bytes(), config.tls_cert.read_bytes())])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise ConfigError(f"cannot bind {address}")
    metrics_http = MetricsHTTPServer(metrics, config.metrics_host, config.metrics_port) \
        if config.metrics_port is not None else None
    server.start()
    if watcher is not None:
        watcher.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(config, server, port, health_servicer, registry, metrics, admission, store,
                            metrics_http, watcher)
    # the bound port is always told, whatever the log level (--port 0 needs it)
    log.log(max(logging.INFO, log.getEffectiveLevel()), "serving", extra={
        "address": running.address, "port": port, "tls": config.tls, "auth": config.auth_enabled,
        "store": store.description if config.store else None, "replica": replica, "taxonomy": registry.active.name,
        "version": registry.active.version, "datasets": [d.name for d in datasets.all()],
        "metrics_port": running.metrics_port, "startup_seconds": round(time.perf_counter() - started, 3)})
    return running


def check_store(location: Path | str) -> tuple[list[Finding], str]:
    """What start-up would find wrong in the store at ``location`` (a directory: files, unfinished
    changes; any store: activated versions passed over, registered datasets that do not load here)
    and the version it would serve (with the built-in default taxonomy); nothing is changed."""
    store: Store
    if isinstance(location, str):
        store = PostgresStore(location, wait_seconds=5.0, read_only=True)
    else:
        store = TaxonomyStore(location, repair=False)
    try:
        registry = TaxonomyRegistry(store)
        DatasetRegistry(store, {})
    finally:
        store.close()
    active = registry.active
    return store.findings, f"{active.name}@{active.version}" + (" (built in)" if active.builtin else "")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``errortaxa serve``: run until SIGTERM or SIGINT, then drain and stop. Exit status 0 after a
    clean stop, 2 for a bad configuration, 1 when the server cannot start."""
    try:
        config = load_config(sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ)
    except ConfigError as exc:
        print(f"errortaxa serve: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level, config.log_format)
    # what start-up makes (modules, the WordNet graph, compiled taxonomies) lives as long as the
    # process: frozen out of the cyclic collector's reach, so that its collections, while starting
    # and while serving, do not walk those few hundred thousand objects again and again
    gc.freeze()
    try:
        running = build_server(config)
    except ConfigError as exc:
        print(f"errortaxa serve: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"errortaxa serve: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        log.exception("cannot start")
        print(f"errortaxa serve: cannot start: {exc}", file=sys.stderr)
        return 1
    gc.freeze()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1.0):
        pass
    running.drain()
    return 0
