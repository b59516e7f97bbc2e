"""Call counters and latency histograms under the conventional gRPC names (those of
go-grpc-prometheus), ErrorTaxa's own counters and the process metrics, in the Prometheus text
format, on an optional HTTP port."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from errortaxa.server.process_metrics import process_lines

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: A method: (grpc_service, grpc_method, grpc_type); grpc_type is unary, client_stream, server_stream
#: or bidi_stream.
Call = tuple[str, str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**values: str) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in values.items()) + "}"


def _call_labels(call: Call, **extra: str) -> str:
    service, method, kind = call
    return _labels(grpc_service=service, grpc_method=method, grpc_type=kind, **extra)


class Metrics:
    """grpc_server_started_total, grpc_server_handled_total (with grpc_code) and the
    grpc_server_handling_seconds histogram, per grpc_service, grpc_method and grpc_type;
    errortaxa_samples_total{grpc_method}, errortaxa_undeclared_calls_total (per method, refused),
    errortaxa_in_flight, errortaxa_taxonomy_changes_total{action},
    errortaxa_active_taxonomy_info{name,version,content_hash,replica}, errortaxa_store_findings{path,problem,action}
    (what start-up found wrong in the store and did about it), errortaxa_store_connected{replica,store} (1 or 0;
    a shared store only), errortaxa_dataset_unavailable{replica,dataset,problem} (a registered dataset this
    server does not serve); process_* from /proc."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started_calls: dict[Call, int] = defaultdict(int)
        self.handled: dict[tuple[Call, str], int] = defaultdict(int)  # (call, grpc_code) -> count
        self.buckets: dict[Call, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.seconds: dict[Call, float] = defaultdict(float)
        self.samples: dict[str, int] = defaultdict(int)
        self.changes: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.active: Callable[[], tuple[str, str, str]] | None = None
        self.store_findings: list[tuple[str, str, str]] = []  # (path, problem, action)
        self.undeclared: dict[Call, int] = defaultdict(int)
        self.replica = ""
        self.store = ""
        self.store_connected: Callable[[], bool] | None = None
        self.dataset_problems: dict[str, str] = {}  # registered dataset -> why it is not served here

    def started(self, call: Call) -> None:
        with self._lock:
            self.in_flight += 1
            self.started_calls[call] += 1

    def finished(self, call: Call, code: str, seconds: float) -> None:
        slot = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            self.in_flight -= 1
            self.handled[(call, code)] += 1
            self.buckets[call][slot] += 1
            self.seconds[call] += seconds

    def undeclared_call(self, call: Call) -> None:
        """A call of a method without a declaration (refused)."""
        with self._lock:
            self.undeclared[call] += 1

    def add_samples(self, method: str, n: int) -> None:
        with self._lock:
            self.samples[method] += n

    def change(self, action: str) -> None:
        with self._lock:
            self.changes[action] += 1

    def render(self) -> str:
        """The Prometheus text exposition (version 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            lines += ["# HELP grpc_server_started_total Total number of RPCs started on the server.",
                      "# TYPE grpc_server_started_total counter"]
            for call, n in sorted(self.started_calls.items()):
                lines.append(f"grpc_server_started_total{_call_labels(call)} {n}")
            lines += ["# HELP grpc_server_handled_total Total number of RPCs completed on the server, "
                      "regardless of success or failure.",
                      "# TYPE grpc_server_handled_total counter"]
            for (call, code), n in sorted(self.handled.items()):
                lines.append(f"grpc_server_handled_total{_call_labels(call, grpc_code=code)} {n}")
            lines += ["# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC "
                      "that had been application-level handled by the server.",
                      "# TYPE grpc_server_handling_seconds histogram"]
            for call, counts in sorted(self.buckets.items()):
                total = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    total += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f"grpc_server_handling_seconds_bucket{_call_labels(call, le=le)} {total}")
                lines.append(f"grpc_server_handling_seconds_sum{_call_labels(call)} {self.seconds[call]:.6f}")
                lines.append(f"grpc_server_handling_seconds_count{_call_labels(call)} {total}")
            lines += ["# HELP errortaxa_samples_total Samples classified, by method.",
                      "# TYPE errortaxa_samples_total counter"]
            for method, n in sorted(self.samples.items()):
                lines.append(f"errortaxa_samples_total{_labels(grpc_method=method)} {n}")
            lines += ["# HELP errortaxa_undeclared_calls_total Calls of methods without a declaration, refused "
                      "with PERMISSION_DENIED.", "# TYPE errortaxa_undeclared_calls_total counter"]
            for call, n in sorted(self.undeclared.items()):
                lines.append(f"errortaxa_undeclared_calls_total{_call_labels(call)} {n}")
            lines += ["# HELP errortaxa_taxonomy_changes_total Taxonomy puts, activations and deletions.",
                      "# TYPE errortaxa_taxonomy_changes_total counter"]
            for action, n in sorted(self.changes.items()):
                lines.append(f"errortaxa_taxonomy_changes_total{_labels(action=action)} {n}")
            lines += ["# HELP errortaxa_store_findings Damaged or foreign store files and unfinished changes "
                      "found at start-up, with what was done.", "# TYPE errortaxa_store_findings gauge"]
            for path, problem, action in self.store_findings:
                labels = _labels(path=path[:200], problem=problem[:200], action=action[:200])
                lines.append(f"errortaxa_store_findings{labels} 1")
            lines += ["# HELP errortaxa_in_flight Calls in progress.", "# TYPE errortaxa_in_flight gauge",
                      f"errortaxa_in_flight {self.in_flight}"]
        if self.active is not None:
            name, version, content_hash = self.active()
            labels = _labels(name=name, version=version, content_hash=content_hash,
                             **({"replica": self.replica} if self.replica else {}))
            lines += ["# HELP errortaxa_active_taxonomy_info The active taxonomy version.",
                      "# TYPE errortaxa_active_taxonomy_info gauge", f"errortaxa_active_taxonomy_info{labels} 1"]
        if self.store_connected is not None:
            labels = _labels(replica=self.replica, store=self.store)
            lines += ["# HELP errortaxa_store_connected Whether the shared store can be reached (1) or not (0).",
                      "# TYPE errortaxa_store_connected gauge",
                      f"errortaxa_store_connected{labels} {int(self.store_connected())}"]
        lines += ["# HELP errortaxa_dataset_unavailable Registered datasets this server does not serve "
                  "(its copy of the label file is missing or differs).", "# TYPE errortaxa_dataset_unavailable gauge"]
        for dataset, problem in sorted(self.dataset_problems.items()):
            labels = _labels(replica=self.replica, dataset=dataset, problem=problem[:200])
            lines.append(f"errortaxa_dataset_unavailable{labels} 1")
        lines += process_lines()
        return "\n".join(lines) + "\n"


class MetricsHTTPServer:
    """GET /metrics on a background thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = metrics.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="errortaxa-metrics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
