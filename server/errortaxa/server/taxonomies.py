"""Compiled taxonomy versions in memory, over the persistent store, with an atomic active pointer.

A request resolves its taxonomy once, at its start, to an immutable ``Entry``; Activate swaps one
reference, so requests in flight finish on the version they started with. With a store shared by
several replicas, ``apply`` follows the store (errortaxa.server.propagation calls it on every
change notification and poll): it compiles every new version when it is put, off the serving path,
so that an activation is a plain swap, and swaps to the store's active version when the store's
activation number is ahead of the one served.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import grpc
from errortaxa.engine import CompiledTaxonomy, FeatureProvider, TaxonomyError, compile_taxonomy, load_taxonomy
from errortaxa.engine.compile.compiler import default_compiled
from errortaxa.engine.features import ProviderDeclaration
from errortaxa.engine.language.limits import TaxonomyTooLarge
from errortaxa.engine.language.problems import Problem
from errortaxa.server.errors import ServiceError, not_found, problem_proto, shown
from errortaxa.server.store import (
    ACTIVATIONS,
    NAME_PATTERN,
    ActiveVersion,
    Finding,
    Snapshot,
    Store,
    StoredVersion,
    StoreUnavailable,
    now,
)
from errortaxa.v1 import taxonomy_pb2

log = logging.getLogger("errortaxa.server")
UPLOAD_NAME = "<upload>"
STARTUP = "errortaxa-startup"  # the audit log's "who" of changes made by start-up itself
CACHE_SIZE = 16  # compiled versions kept besides the active one and the builtin

ProvidersFor = Callable[[CompiledTaxonomy], Mapping[str, FeatureProvider]]  # a version's feature providers


@dataclass(frozen=True)
class Entry:
    """One compiled taxonomy version, immutable once built."""

    compiled: CompiledTaxonomy
    yaml: str
    builtin: bool
    created_at: str = ""
    created_by: str = ""
    providers: Mapping[str, FeatureProvider] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.compiled.name

    @property
    def version(self) -> str:
        return self.compiled.version

    @property
    def key(self) -> tuple[str, str]:
        return self.compiled.name, self.compiled.version

    @property
    def num_classes(self) -> int:
        return len(self.compiled.vocabulary)

    @cached_property
    def providers_needed(self) -> tuple[str, ...]:
        """The feature providers the taxonomy's rules ask, sorted."""
        return tuple(sorted(self.compiled.providers_needed))

    def info(self, *, active: bool, full: bool = True) -> taxonomy_pb2.TaxonomyInfo:
        """The metadata message; ``full`` adds the axes (outcomes and rules) and description."""
        c = self.compiled
        msg = taxonomy_pb2.TaxonomyInfo(
            name=c.name, version=c.version, content_hash=c.content_hash, active=active,
            builtin=self.builtin, num_classes=self.num_classes, created_at=self.created_at,
            created_by=self.created_by,
        )
        if full:
            msg.description = (getattr(c.document, "description", None) or "").strip()
            for axis in c.axes.values():
                msg.axes.add(name=axis.name, values=axis.value_ids, rules=axis.rule_ids)
        return msg


def unavailable(exc: StoreUnavailable) -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAVAILABLE, str(exc), reason="STORE_UNAVAILABLE")


def _problems_error(message: str, problems: list[Problem]) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message, field="yaml", reason="TAXONOMY_INVALID",
                        problems=[problem_proto(p) for p in problems])


def compile_text(text: str, filename: str, declarations: Mapping[str, ProviderDeclaration] | None = None, *,
                 stored: bool = False) -> CompiledTaxonomy:
    """Load and compile uploaded YAML text (TaxonomyError with every problem); ``extends`` may name a
    built-in taxonomy only, never a file of the server. Every ``feature:`` is checked against the
    installed providers' ``declarations``: a provider that is not installed is an error, except in
    a version already ``stored`` (it still loads; its feature rules are not evaluated)."""
    return compile_taxonomy(load_taxonomy(filename, text=text, builtin_parents_only=True), providers=declarations,
                            missing_provider="warning" if stored else "error")


def limit_error(exc: TaxonomyTooLarge) -> ServiceError:
    """INVALID_ARGUMENT for a taxonomy over a limit of language.limits, naming the limit and its value."""
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"taxonomy refused: {exc.problems[0].message}",
                        field="yaml", reason="LIMIT_EXCEEDED", problems=[problem_proto(p) for p in exc.problems])


def _not_compiling(exc: TaxonomyError) -> ServiceError:
    """INVALID_ARGUMENT with every problem of an upload that does not compile (or is over a limit)."""
    if isinstance(exc, TaxonomyTooLarge):
        return limit_error(exc)
    errors = sum(p.severity == "error" for p in exc.problems)
    return _problems_error(f"taxonomy does not compile: {errors} error(s)", exc.problems)


class TaxonomyRegistry:
    """The builtin taxonomy, stored versions (compiled on demand, cached) and the active one."""

    def __init__(self, store: Store, *, default_taxonomy: str | None = None,
                 providers: ProvidersFor | None = None,
                 declarations: Mapping[str, ProviderDeclaration] | None = None) -> None:
        self.store = store
        self._providers = providers
        self._declarations = declarations
        self._lock = threading.RLock()  # serializes Put / Activate / Delete and compiles
        self._cache: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self._newest: dict[str, str] = {}  # taxonomy name -> newest stored version (store order)
        self._known: dict[tuple[str, str], str] = {}  # stored versions seen -> content hash
        for kept in store.versions():
            self._newest[kept.name] = kept.version
            self._known[(kept.name, kept.version)] = kept.content_hash
        compiled = default_compiled() if default_taxonomy is None else compile_taxonomy(
            load_taxonomy(default_taxonomy), providers=declarations)
        self.builtin = self._entry(compiled, compiled.loaded.sources[0].text, builtin=True)
        self._active = self._last_activated()
        self._seq = store.active_key()[0]  # the activation number of the version served
        log.info("active taxonomy", extra={"taxonomy": self._active.name, "version": self._active.version,
                                           "content_hash": self._active.compiled.content_hash})

    def _last_activated(self) -> Entry:
        """The last activated version that is intact and compiles, else the builtin. Each one passed
        over is a finding of the store; the one chosen instead is then activated (and audited) so
        that the activation log names it last."""
        passed_over = False
        chosen = self.builtin
        for key in self.store.activations():
            if key == self.builtin.key:
                break
            stored = self.store.get(*key)
            if stored is None:
                problem = "is not in the store (or was damaged)"
            else:
                try:
                    chosen = self._compile_stored(stored)
                    break
                except ServiceError as exc:
                    problem = f"does not compile ({exc.message})"
            passed_over = True
            self.store.findings.append(Finding(ACTIVATIONS, f"the activated {key[0]}@{key[1]} {problem}",
                                               "not served; trying the one activated before"))
        missing = [] if chosen.builtin else self.missing_providers(chosen.compiled)
        if missing:  # uninstalled since it was stored: served all the same, never replaced by an older one
            self.store.findings.append(Finding(
                ACTIVATIONS, f"the activated {chosen.name}@{chosen.version} asks feature provider(s) "
                             f"{', '.join(missing)}, not installed here",
                "served; its rules using them are not evaluated"))
        if passed_over and self.store.repair and not self.store.shared:  # a replica never changes the others
            self.store.activate_version(chosen.name, chosen.version, chosen.compiled.content_hash, STARTUP,
                                        stored=not chosen.builtin,
                                        reason="the versions activated later are not intact")
        return chosen

    def _entry(self, compiled: CompiledTaxonomy, text: str, *, builtin: bool, created_at: str = "",
               created_by: str = "") -> Entry:
        providers = self._providers(compiled) if self._providers is not None else {}
        return Entry(compiled, text, builtin, created_at, created_by, providers)

    def missing_providers(self, compiled: CompiledTaxonomy) -> list[str]:
        """The feature providers ``compiled`` asks that are not installed here (sorted)."""
        if self._declarations is None:
            return []
        return sorted(compiled.providers_needed - set(self._declarations))

    def _compile_stored(self, stored: StoredVersion) -> Entry:
        try:
            compiled = compile_text(stored.yaml, stored.filename, self._declarations, stored=True)
        except TaxonomyError as exc:
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"stored taxonomy {stored.name}@{stored.version} no longer compiles: "
                               f"{_not_compiling(exc).message}", field="taxonomy",
                               reason="STORED_TAXONOMY_INVALID") from None
        missing = self.missing_providers(compiled)
        if missing:
            log.warning("stored taxonomy asks feature providers that are not installed; its rules using them "
                        "are not evaluated", extra={"taxonomy": stored.name, "version": stored.version,
                                                    "providers": missing})
        return self._entry(compiled, stored.yaml, builtin=False, created_at=stored.created_at,
                           created_by=stored.created_by)

    @property
    def active(self) -> Entry:
        return self._active

    # -- following a shared store --------------------------------------------------------------
    def follow(self, take: Callable[[], Snapshot]) -> None:
        """Follow the store: take its snapshot (with changes made here held back, so that it is not
        older than them), take the newest version of each name from it, forget versions deleted,
        compile new ones now (not on a request's path), then swap in the store's active version
        when its activation number is ahead."""
        with self._lock:
            snapshot = take()
            known = {(name, version): content_hash for name, version, content_hash in snapshot.versions}
            new = [key for key, content_hash in known.items() if self._known.get(key) != content_hash]
            self._known = known
            self._newest = {name: version for name, version, _ in snapshot.versions}
            for key in [k for k in self._cache if k not in known]:
                del self._cache[key]
        for key in new[-CACHE_SIZE:]:
            stored = self.store.get(*key)
            if stored is None:
                continue
            try:
                entry = self._compile_stored(stored)
            except ServiceError as exc:
                log.warning("stored taxonomy does not compile", extra={"taxonomy": key[0], "version": key[1],
                                                                       "problem": exc.message})
                continue
            with self._lock:
                if self._known.get(key) == stored.content_hash:  # not deleted meanwhile
                    self._remember(entry)
        if snapshot.seq <= self._seq:
            return
        active = snapshot.active
        try:
            entry = self.builtin if active is None or active == self.builtin.key else self._cached(*active)
        except ServiceError as exc:  # it does not compile here (other limits?): keep serving, say so once
            log.error("activated taxonomy not served", extra={"taxonomy": active[0] if active else "",
                                                               "version": active[1] if active else "",
                                                               "problem": exc.message,
                                                               "serving": self._active.version})
            entry = self._active
        with self._lock:
            if snapshot.seq > self._seq:
                self._swap(entry, snapshot.seq)

    def _swap(self, entry: Entry, seq: int) -> None:
        previous, self._active, self._seq = self._active, entry, seq
        if not previous.builtin:
            self._remember(previous)
        if previous is not entry:
            log.info("active taxonomy", extra={"taxonomy": entry.name, "version": entry.version,
                                               "content_hash": entry.compiled.content_hash, "activation": seq})

    # -- lookup ------------------------------------------------------------------------------
    def resolve(self, ref: taxonomy_pb2.TaxonomyRef | None) -> Entry:
        """The version a request names (see TaxonomyRef); NOT_FOUND when there is none."""
        active = self._active  # read once: the whole request uses this version
        if ref is None or not ref.name:
            if ref is not None and ref.version:
                raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, "taxonomy.version needs taxonomy.name",
                                   field="taxonomy.name", reason="MISSING_FIELD")
            return active
        name, version = ref.name, ref.version
        if not version:
            if active.name == name:
                return active
            if self.builtin.name == name:
                return self.builtin
            newest = self._newest.get(name)
            if newest is None:
                raise not_found(f"no taxonomy named {shown(name)}", field="taxonomy.name")
            version = newest
        for entry in (active, self.builtin):
            if entry.key == (name, version):
                return entry
        return self._cached(name, version)

    def _cached(self, name: str, version: str) -> Entry:
        with self._lock:
            entry = self._cache.get((name, version))
            if entry is not None:
                self._cache.move_to_end((name, version))
                return entry
            try:
                stored = self.store.get(name, version)
            except StoreUnavailable as exc:
                raise unavailable(exc) from None
            if stored is None:
                raise not_found(f"no version {shown(version)} of taxonomy {shown(name)}", field="taxonomy.version")
            entry = self._compile_stored(stored)
            self._remember(entry)
            return entry

    def _remember(self, entry: Entry) -> None:
        self._cache[entry.key] = entry
        self._cache.move_to_end(entry.key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def infos(self, name: str = "") -> list[taxonomy_pb2.TaxonomyInfo]:
        active = self._active
        out = [self.builtin.info(active=self.builtin is active)]
        try:
            versions = self.store.versions()
        except StoreUnavailable as exc:
            raise unavailable(exc) from None
        for stored in versions:
            key = (stored.name, stored.version)
            entry = active if active.key == key else self._cache.get(key)
            if entry is not None:
                out.append(entry.info(active=entry is active))
            else:  # not compiled yet: metadata from the store only
                out.append(taxonomy_pb2.TaxonomyInfo(
                    name=stored.name, version=stored.version, content_hash=stored.content_hash,
                    created_at=stored.created_at, created_by=stored.created_by))
        return [info for info in out if not name or info.name == name]

    # -- changes -----------------------------------------------------------------------------
    def validate(self, text: str, filename: str) -> tuple[CompiledTaxonomy | None, list[Problem]]:
        """Dry run: the compiled taxonomy (or None) and every problem; ServiceError for a text over
        a limit (it is refused, not reported)."""
        try:
            compiled = compile_text(text, filename, self._declarations)
        except TaxonomyTooLarge as exc:
            raise limit_error(exc) from None
        except TaxonomyError as exc:
            return None, list(exc.problems)
        return compiled, list(compiled.warnings)

    def put(self, text: str, filename: str, *, who: str) -> tuple[Entry, bool]:
        """Compile and store a version; (entry, created). Same name, version and content: no-op."""
        try:
            compiled = compile_text(text, filename, self._declarations)
        except TaxonomyError as exc:
            raise _not_compiling(exc) from None
        for label, value in (("name", compiled.name), ("version", compiled.version)):
            if not NAME_PATTERN.match(value):
                raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"taxonomy {label} {shown(value)} cannot be stored: use letters, digits, '.', "
                                   "'_' and '-' (at most 128)", field=f"yaml.{label}", reason="BAD_NAME")
        if self.builtin.key == (compiled.name, compiled.version) \
                and self.builtin.compiled.content_hash != compiled.content_hash:
            raise _exists(compiled, self.builtin.compiled.content_hash)
        stored = StoredVersion(compiled.name, compiled.version, text, filename, compiled.content_hash, now(), who)
        with self._lock:
            try:
                existing = None if self.builtin.key == (stored.name, stored.version) \
                    else self.store.put_version(stored, who)
            except StoreUnavailable as exc:
                raise unavailable(exc) from None
            if existing is not None and existing != compiled.content_hash:
                raise _exists(compiled, existing)
            if existing is not None or self.builtin.key == (stored.name, stored.version):
                return self.resolve(taxonomy_pb2.TaxonomyRef(name=compiled.name, version=compiled.version)), False
            self._newest[stored.name] = stored.version
            self._known[(stored.name, stored.version)] = stored.content_hash
            entry = self._entry(compiled, text, builtin=False, created_at=stored.created_at, created_by=who)
            self._remember(entry)
            return entry, True

    def activate(self, ref: taxonomy_pb2.TaxonomyRef, *, who: str) -> tuple[Entry, Entry]:
        """Make a version the default: (new active, previous active). The version already active:
        nothing is appended (a retried Activate is a no-op)."""
        with self._lock:
            entry = self.resolve(ref)
            previous = self._active
            try:
                seq = self.store.activate_version(  # durable first, then visible
                    entry.name, entry.version, entry.compiled.content_hash, who, stored=not entry.builtin,
                    previous={"taxonomy": previous.name, "version": previous.version})
            except StoreUnavailable as exc:
                raise unavailable(exc) from None
            except KeyError:
                raise not_found(f"no version {shown(entry.version)} of taxonomy {shown(entry.name)}",
                                field="taxonomy.version") from None
            if seq is not None and seq > self._seq:
                self._swap(entry, seq)
            return entry, previous

    def delete(self, ref: taxonomy_pb2.TaxonomyRef, *, who: str) -> StoredVersion:
        with self._lock:
            name, version = ref.name, ref.version
            if self.builtin.key == (name, version):
                raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION, f"{name}@{version} is built in",
                                   field="taxonomy", reason="BUILTIN")
            try:
                stored = self.store.delete_version(name, version, who)  # the store decides what is active
                if stored is None:
                    raise not_found(f"no version {shown(version)} of taxonomy {shown(name)}",
                                    field="taxonomy.version")
                self._cache.pop((name, version), None)
                self._known.pop((name, version), None)
                if self._newest.get(name) == version:
                    remaining = [v.version for v in self.store.versions() if v.name == name]
                    if remaining:
                        self._newest[name] = remaining[-1]
                    else:
                        del self._newest[name]
            except ActiveVersion:
                raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION,
                                   f"{name}@{version} is the active taxonomy: activate another one first",
                                   field="taxonomy", reason="ACTIVE") from None
            except StoreUnavailable as exc:
                raise unavailable(exc) from None
            return stored


def _exists(compiled: CompiledTaxonomy, existing: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.ALREADY_EXISTS,
                        f"{compiled.name}@{compiled.version} is stored with other content ({existing}); give the "
                        "new one another version", field="yaml.version", reason="VERSION_EXISTS")


def info_of(compiled: CompiledTaxonomy) -> taxonomy_pb2.TaxonomyInfo:
    """Metadata of a compiled taxonomy that is not stored (e.g. a dry run)."""
    return Entry(compiled, "", builtin=False).info(active=False)


