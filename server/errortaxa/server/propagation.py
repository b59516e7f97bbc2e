"""Following a shared store: a watcher thread per replica that LISTENs for the store's change
notifications and also polls every ``poll_seconds``; on each it reads the store's snapshot and lets
the taxonomy and dataset registries follow it (compiles off the serving path, atomic swap). When
the database cannot be reached it says so once (log line, metric), keeps the registries as they
are (classification goes on with the last version compiled) and reconnects with backoff."""

from __future__ import annotations

import logging
import threading

from errortaxa.server.datasets import DatasetRegistry
from errortaxa.server.pgstore import PostgresStore
from errortaxa.server.store import StoreUnavailable
from errortaxa.server.taxonomies import TaxonomyRegistry

log = logging.getLogger("errortaxa.server")
FIRST_BACKOFF, MAX_BACKOFF = 0.1, 5.0  # seconds between reconnection attempts


class StoreWatcher:
    """The thread that keeps one replica on the shared store's active version."""

    def __init__(self, store: PostgresStore, registry: TaxonomyRegistry, datasets: DatasetRegistry, *,
                 poll_seconds: float) -> None:
        self.store = store
        self.registry = registry
        self.datasets = datasets
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="errortaxa-store-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.poll_seconds + 5)

    def sync(self) -> None:
        """Read the store's snapshot and follow it."""
        self.registry.follow(self.store.snapshot)
        self.datasets.follow(self.store.snapshot)

    def _run(self) -> None:
        backoff = FIRST_BACKOFF
        down: str | None = None  # the reason, while the store is unreachable
        while not self._stop.is_set():
            try:
                for _ in self.store.listen(self.poll_seconds, self._stop):
                    self.sync()
                    if down is not None:
                        log.warning("store reconnected", extra={"store": self.store.description})
                        down = None
                    backoff = FIRST_BACKOFF
            except StoreUnavailable as exc:
                if down is None:
                    down = str(exc)
                    log.error("store disconnected", extra={"store": self.store.description, "reason": down,
                                                           "serving": self.registry.active.version})
            except Exception:  # a bug must not end the watcher: say it and go on
                log.exception("store watcher failed")
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
