"""Request counters and latency histograms in the Prometheus text format, on an optional HTTP port."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """errortaxa_requests_total{method,code}, errortaxa_request_seconds{method} (histogram),
    errortaxa_samples_total{method}, errortaxa_in_flight, errortaxa_taxonomy_changes_total{action},
    errortaxa_active_taxonomy_info{name,version,content_hash}, errortaxa_store_findings{path,problem,action}
    (what start-up found wrong in the store and did about it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.seconds: dict[str, float] = defaultdict(float)
        self.samples: dict[str, int] = defaultdict(int)
        self.changes: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.active: Callable[[], tuple[str, str, str]] | None = None
        self.store_findings: list[tuple[str, str, str]] = []  # (path, problem, action)

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def finished(self, method: str, code: str, seconds: float) -> None:
        slot = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            self.in_flight -= 1
            self.requests[(method, code)] += 1
            self.buckets[method][slot] += 1
            self.seconds[method] += seconds

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
            lines += ["# HELP errortaxa_requests_total Calls finished, by method and status code.",
                      "# TYPE errortaxa_requests_total counter"]
            for (method, code), n in sorted(self.requests.items()):
                lines.append(f'errortaxa_requests_total{{method="{method}",code="{code}"}} {n}')
            lines += ["# HELP errortaxa_request_seconds Call latency, by method.",
                      "# TYPE errortaxa_request_seconds histogram"]
            for method, counts in sorted(self.buckets.items()):
                total = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    total += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f'errortaxa_request_seconds_bucket{{method="{method}",le="{le}"}} {total}')
                lines.append(f'errortaxa_request_seconds_sum{{method="{method}"}} {self.seconds[method]:.6f}')
                lines.append(f'errortaxa_request_seconds_count{{method="{method}"}} {total}')
            lines += ["# HELP errortaxa_samples_total Samples classified, by method.",
                      "# TYPE errortaxa_samples_total counter"]
            for method, n in sorted(self.samples.items()):
                lines.append(f'errortaxa_samples_total{{method="{method}"}} {n}')
            lines += ["# HELP errortaxa_taxonomy_changes_total Taxonomy puts, activations and deletions.",
                      "# TYPE errortaxa_taxonomy_changes_total counter"]
            for action, n in sorted(self.changes.items()):
                lines.append(f'errortaxa_taxonomy_changes_total{{action="{action}"}} {n}')
            lines += ["# HELP errortaxa_store_findings Damaged or foreign store files and unfinished changes "
                      "found at start-up, with what was done.", "# TYPE errortaxa_store_findings gauge"]
            for path, problem, action in self.store_findings:
                lines.append(f'errortaxa_store_findings{{path="{_label(path)}",problem="{_label(problem)}",'
                             f'action="{_label(action)}"}} 1')
            lines += ["# HELP errortaxa_in_flight Calls in progress.", "# TYPE errortaxa_in_flight gauge",
                      f"errortaxa_in_flight {self.in_flight}"]
        if self.active is not None:
            name, version, content_hash = self.active()
            lines += ["# HELP errortaxa_active_taxonomy_info The active taxonomy version.",
                      "# TYPE errortaxa_active_taxonomy_info gauge",
                      f'errortaxa_active_taxonomy_info{{name="{name}",version="{version}",'
                      f'content_hash="{content_hash}"}} 1']
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """``value`` escaped as a Prometheus label value (at most 200 characters)."""
    return value[:200].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
