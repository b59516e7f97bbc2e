"""Datasets the server holds: label sets loaded from files, that clients send predictions for."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from errortaxa.engine import SampleBatch
from errortaxa.engine.errors import ErrorTaxaError
from errortaxa.engine.inputs import LABELS, LabeledImages, ReadOptions, detect
from errortaxa.server.convert import check_finite, length_error, matrix
from errortaxa.server.errors import ServiceError, from_error, invalid, not_found, shown
from errortaxa.server.store import (
    DATASETS,
    NAME_PATTERN,
    DatasetRecord,
    Finding,
    Snapshot,
    Store,
    StoreUnavailable,
    file_hash,
)
from errortaxa.v1 import samples_pb2, service_pb2

log = logging.getLogger("errortaxa.server")


@dataclass(frozen=True)
class Dataset:
    name: str
    labels: LabeledImages
    source: str
    format: str
    batch: SampleBatch  # every row with placeholder predictions, built once at load

    def info(self) -> service_pb2.DatasetInfo:
        sizes = np.diff(self.labels.label_offsets)
        return service_pb2.DatasetInfo(
            name=self.name, size=len(self.labels), problematic=int(self.labels.problematic.sum()),
            multi_label=int((sizes > 1).sum()), empty=int((sizes == 0).sum()), source=self.source,
            format=self.format, first_images=self.labels.images[:5],
        )


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a regular file; False for names the system refuses (too long, ...)."""
    try:
        return path.is_file()
    except OSError:
        return False


def load_dataset(name: str, path: str) -> Dataset:
    """Read a label file in any registered label-set format (the multi-label CSV, ReaL json, a
    target list, JSONL samples, CSV and parquet tables of image and label). Errors name the file,
    the record and the field, never the file's content."""
    file = Path(path)
    if not _is_file(file):
        raise not_found(f"no label file {shown(path)} on the server", field="path")
    try:
        fmt = detect(path, LABELS)
        labels = fmt.read(path, ReadOptions())
    except ErrorTaxaError as exc:  # its status by kind; the message without the reason, which may quote content
        record, column = exc.location.record, exc.location.field
        where = f" record {record}" if record is not None else ""
        where += f": field '{column}'" if column else ""
        raise from_error(exc, field="path", message=f"{shown(path)}{where}: cannot be read as a label file "
                                                    f"({exc.code})") from None
    if len(set(labels.images)) != len(labels.images):
        raise invalid(f"{shown(path)}: image ids are not unique", field="path", reason="BAD_LABEL_FILE")
    return Dataset(name, labels, str(file), fmt.name, labels.to_batch(np.zeros(len(labels), np.int32)))


class DatasetRegistry:
    """Named label sets: from the configuration and from RegisterDataset (remembered in the store
    with the label file's path and content hash). Each server loads a registered dataset from its
    own file and checks the hash: one whose copy is missing or differs is not served here
    (FAILED_PRECONDITION naming it, ``problems``, a log line), the others are."""

    def __init__(self, store: Store, configured: dict[str, str], data_dirs: tuple[Path, ...] = ()) -> None:
        self.store = store
        self.data_dirs = tuple(d.resolve() for d in data_dirs)
        self.configured = set(configured)
        self._lock = threading.RLock()
        self._datasets: dict[str, Dataset] = {}
        self._records: dict[str, DatasetRecord] = {}
        self.problems: dict[str, str] = {}  # registered dataset -> why this server does not serve it
        for name, path in configured.items():
            self._datasets[name] = load_dataset(name, path)
            log.info("dataset loaded", extra={"dataset": name, "path": path, "size": len(self._datasets[name].labels)})
        for name, problem in self._apply(store.datasets()).items():
            store.findings.append(Finding(DATASETS, f"the registered dataset {shown(name)} {problem}", "not served"))

    def follow(self, take: Callable[[], Snapshot]) -> None:
        """Follow the store's registered datasets (its snapshot taken with registrations made here
        held back, so that it is not older than them)."""
        with self._lock:
            self._apply(take().datasets)

    def _apply(self, records: dict[str, DatasetRecord]) -> dict[str, str]:
        """Load the registered datasets new or changed (checking their content hash); the problems
        of those newly not served here."""
        found: dict[str, str] = {}
        for name, record in sorted(records.items()):
            if name in self.configured or self._records.get(name) == record:
                continue
            try:
                dataset = _load_checked(name, record)
            except ServiceError as exc:
                found[name] = exc.message
                log.error("dataset not served", extra={"dataset": name, "path": record.path, "problem": exc.message})
                with self._lock:
                    self._records[name] = record
                    self._datasets.pop(name, None)
                    self.problems[name] = exc.message
                continue
            with self._lock:
                self._records[name] = record
                self._datasets[name] = dataset
                self.problems.pop(name, None)
            log.info("dataset loaded", extra={"dataset": name, "path": record.path, "size": len(dataset.labels)})
        return found

    def get(self, name: str) -> Dataset:
        dataset = self._datasets.get(name)
        if dataset is None:
            problem = self.problems.get(name)
            if problem is not None:
                raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                                   f"dataset {shown(name)} is not served by this server: {problem}",
                                   field="dataset.dataset", reason="DATASET_UNAVAILABLE")
            raise not_found(f"no dataset named {shown(name)}", field="dataset.dataset")
        return dataset

    def all(self) -> list[Dataset]:
        return sorted(self._datasets.values(), key=lambda d: d.name)

    def inside_data_dirs(self, path: str) -> Path:
        """``path`` (absolute, or relative to a data directory) when it lies under one of the
        server's data directories after links and '..' are resolved; nothing is read before."""
        if not self.data_dirs:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                               "this server reads label files only under its data directories, and has none "
                               "(start it with --data-dir)", field="path", reason="NO_DATA_DIRS")
        given = Path(path)
        candidates = [given] if given.is_absolute() else [d / given for d in self.data_dirs]
        for candidate in candidates:
            try:
                found = candidate.resolve()
            except (OSError, RuntimeError, ValueError):
                continue
            if any(found.is_relative_to(d) for d in self.data_dirs) and (_is_file(found) or len(candidates) == 1):
                return found
        raise ServiceError(grpc.StatusCode.PERMISSION_DENIED,
                           f"{shown(path)} is not a file under the server's data directories", field="path",
                           reason="OUTSIDE_DATA_DIRS")

    def register(self, name: str, path: str, *, replace: bool, who: str) -> Dataset:
        if not NAME_PATTERN.match(name):
            raise invalid(f"dataset name {shown(name)}: use letters, digits, '.', '_' and '-'", field="name",
                          reason="BAD_NAME")
        if name in self._datasets and not replace:
            raise ServiceError(grpc.StatusCode.ALREADY_EXISTS, f"dataset '{name}' exists (set replace)",
                               field="name", reason="DATASET_EXISTS")
        found = self.inside_data_dirs(path)
        dataset = load_dataset(name, str(found))
        content_hash = file_hash(found)
        record = DatasetRecord(dataset.source, content_hash)
        with self._lock:
            try:
                self.store.register_dataset(name, record, len(dataset.labels), who)
            except StoreUnavailable as exc:
                raise ServiceError(grpc.StatusCode.UNAVAILABLE, str(exc), reason="STORE_UNAVAILABLE") from None
            self._datasets[name] = dataset
            self._records[name] = record
            self.problems.pop(name, None)
        return dataset


def _load_checked(name: str, record: DatasetRecord) -> Dataset:
    """A registered dataset from this server's copy of its label file, which must have the
    registered content hash (FAILED_PRECONDITION when it differs)."""
    if record.content_hash and _is_file(Path(record.path)):
        try:
            found = file_hash(record.path)
        except OSError as exc:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION, f"{shown(record.path)} cannot be read "
                               f"({exc.strerror or exc})", field="path", reason="DATASET_UNAVAILABLE") from None
        if found != record.content_hash:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"{shown(record.path)} differs from the registered file (content hash {found}, "
                               f"registered {record.content_hash})", field="path", reason="DATASET_CHANGED")
    try:
        return load_dataset(name, record.path)
    except ServiceError as exc:
        raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION, f"cannot be loaded ({exc.message})", field="path",
                           reason="DATASET_UNAVAILABLE") from None


def predictions_batch(dataset: Dataset, msg: samples_pb2.DatasetPredictions, field: str = "dataset"
                      ) -> tuple[SampleBatch, np.ndarray]:
    """The samples (held labels + sent predictions) and the dataset row of each prediction."""
    labels = dataset.labels
    if len(msg.pred) and msg.HasField("logits"):
        raise invalid("give pred or logits, not both", field=f"{field}.logits", reason="ONE_OF")
    if msg.HasField("logits"):
        logits = matrix(msg.logits, np.float32, f"{field}.logits")
        if logits.shape[0] and not logits.shape[1]:
            raise invalid(f"{field}.logits has {logits.shape[0]} rows of 0 columns: a row needs a score per class",
                          field=f"{field}.logits", reason="LENGTH_MISMATCH")
        check_finite(logits, f"{field}.logits")
        pred = np.argmax(logits, axis=1).astype(np.int32) if logits.shape[0] else np.zeros(0, np.int32)
    else:
        pred = np.array(msg.pred, dtype=np.int32)
    n = pred.shape[0]
    if len(msg.images):
        if len(msg.images) != n:
            raise length_error(f"{field}.images", len(msg.images), n, "predictions")
        rows = labels.indices_of(msg.images)
        missing = np.flatnonzero(rows < 0)
        if missing.size:
            i = int(missing[0])
            raise not_found(f"{field}.images[{i}]: {shown(msg.images[i])} is not in dataset '{dataset.name}'",
                            field=f"{field}.images", sample_index=i)
    else:
        if msg.offset < 0 or msg.offset + n > len(labels):
            raise invalid(f"{n} predictions from row {msg.offset} do not fit dataset '{dataset.name}' "
                          f"of {len(labels)} images", field=f"{field}.offset", reason="OUT_OF_RANGE")
        rows = np.arange(msg.offset, msg.offset + n, dtype=np.int64)
    if n == len(labels) and np.array_equal(rows, np.arange(n)):  # the whole dataset, in order
        return dataclasses.replace(dataset.batch, pred=pred), rows
    return dataset.batch.take(rows, pred), rows
