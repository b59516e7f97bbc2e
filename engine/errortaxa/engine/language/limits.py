"""Bounds on what reading and compiling one taxonomy may cost, checked before the work is done.

A YAML text is scanned as a stream of parser events (no nodes, no objects built) before it is
composed: its size, its alias uses, its nesting depth and the number of nodes it expands to with
every alias followed (what walking or validating the document costs) are bounded, so an alias bomb
or a deeply nested document is refused in milliseconds. The compiler asks ``check_pair_tables``
before it builds another class-pair table (C x C booleans each). Each refusal is a
``TaxonomyTooLarge`` naming the limit and its value.

The limits are process-wide (``configure``), and set the same way everywhere: a limit is named as
a field of :class:`Limits` (``max_pair_tables``), its environment variable is
``ERRORTAXA_TAXONOMY_`` and the name in capitals (:func:`env_name`), and a value given as text
(``NAME=VALUE``, an environment variable, a server setting) is read by :func:`parse_value`. The
server's settings ``taxonomy_<name>`` (config file, environment, ``--taxonomy-<name>`` flags) and
the CLI's ``--limit NAME=VALUE`` (over the environment: :func:`from_settings`) both end here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace

import yaml
from errortaxa.engine.errors import InvalidInput
from errortaxa.engine.language.problems import KeyPath, Problem, TaxonomyError

_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Limits:
    """Bounds per taxonomy file (``max_bytes``..``max_nodes``) and per compiled taxonomy."""

    max_bytes: int = 1024 * 1024  # UTF-8 size of one YAML text
    max_aliases: int = 100  # alias uses (``*name``) in one text
    max_depth: int = 64  # nesting of mappings and sequences
    max_nodes: int = 200_000  # nodes with every alias expanded (the default taxonomy has ~2,600)
    max_pair_tables: int = 64  # distinct class-pair tables one compile builds (1 MB each for 1,000 classes)

    def check(self) -> Limits:
        for key, value in vars(self).items():
            if value < 1:
                raise InvalidInput(f"taxonomy limit {key} must be positive, got {value}")
        return self


#: The names of the limits (the fields of :class:`Limits`), in order.
NAMES: tuple[str, ...] = tuple(f.name for f in fields(Limits))
#: What each limit bounds, in a few words (for help texts).
BOUNDS: dict[str, str] = {"max_bytes": "UTF-8 size", "max_aliases": "YAML alias uses", "max_depth": "nesting depth",
                          "max_nodes": "nodes with aliases expanded", "max_pair_tables": "distinct class-pair tables"}
ENV_PREFIX = "ERRORTAXA_TAXONOMY_"


def env_name(name: str) -> str:
    """The environment variable of a limit: ``max_pair_tables`` -> ``ERRORTAXA_TAXONOMY_MAX_PAIR_TABLES``."""
    return ENV_PREFIX + name.upper()


def parse_value(name: str, text: str | int, origin: str) -> int:
    """The value of limit ``name`` given as ``text`` at ``origin`` (``--limit``, ``$ERRORTAXA_...``):
    a positive integer (``_`` and ``,`` may group digits); InvalidInput naming both otherwise."""
    if name not in NAMES:
        raise InvalidInput(f"{origin}: unknown taxonomy limit {str(name)[:40]!r} (limits: {', '.join(NAMES)})")
    value: int | None = None
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str):
        digits = text.strip().replace("_", "").replace(",", "")
        value = int(digits) if digits.isascii() and digits.isdigit() else None
    if value is None or value < 1:
        raise InvalidInput(f"{origin}: taxonomy limit {name} must be a positive integer, got {str(text)[:40]!r}")
    return value


def parse_assignment(text: str, origin: str = "--limit") -> tuple[str, int]:
    """``NAME=VALUE`` (``max_pair_tables=128``) as the limit's name and value."""
    name, sep, value = text.partition("=")
    if not sep:
        raise InvalidInput(f"{origin} {text[:60]!r}: expected NAME=VALUE, e.g. max_pair_tables=128 "
                           f"(limits: {', '.join(NAMES)})")
    return name.strip(), parse_value(name.strip(), value, f"{origin} {text[:60]!r}")


def from_settings(environ: Mapping[str, str], assignments: Iterable[str] = (), origin: str = "--limit") -> Limits:
    """The limits from the defaults, then the environment variables (:func:`env_name`), then
    ``NAME=VALUE`` assignments (the CLI's ``--limit``)."""
    values: dict[str, int] = {}
    for name in NAMES:
        variable = env_name(name)
        if environ.get(variable, "") != "":
            values[name] = parse_value(name, environ[variable], f"${variable}")
    for text in assignments:
        name, value = parse_assignment(text, origin)
        values[name] = value
    return replace(Limits(), **values).check()


class TaxonomyTooLarge(TaxonomyError, InvalidInput):
    """A taxonomy refused for its size, not its content; ``limit`` and ``value`` name the bound (an
    invalid input: the server answers INVALID_ARGUMENT with the reason LIMIT_EXCEEDED)."""

    code = "LIMIT_EXCEEDED"

    def __init__(self, origin: str, line: int | None, key_path: KeyPath, limit: str, value: int, what: str) -> None:
        super().__init__([Problem(origin, line, key_path, f"{what}: over the limit {limit} = {value}")])
        self.limit = limit
        self.value = value


_current = Limits()


def configure(limits: Limits) -> None:
    """Set the limits of every later load and compile in this process."""
    global _current
    _current = limits.check()


def current() -> Limits:
    return _current


#: Keys whose mapping value is a class-pair predicate, and those whose items or value are ones again.
_PAIR_ROOTS = frozenset({"pred_vs_target", "pred_vs_label"})
_PAIR_PARTS = frozenset({"all", "any", "not"})


class _Scan:
    """One pass over a text's parser events (recursive over collections, at most ``max_depth`` deep)."""

    def __init__(self, origin: str, text: str, lim: Limits) -> None:
        self.origin, self.lim = origin, lim
        self.events = iter(yaml.parse(text, Loader=_PARSER))
        self.aliases = 0
        self.expanded = 0
        self.depth = 0
        self.anchored: dict[str, tuple[int, str]] = {}  # anchor -> (expanded nodes, signature)
        self.pair_predicates: set[str] = set()

    def refuse(self, event: yaml.Event, limit: str, value: int, what: str) -> TaxonomyTooLarge:
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        return TaxonomyTooLarge(self.origin, line, (), limit, value, what)

    def count(self, event: yaml.Event, nodes: int) -> None:
        self.expanded += nodes
        if self.expanded > self.lim.max_nodes:
            raise self.refuse(event, "max_nodes", self.lim.max_nodes,
                              "the document expands to too many nodes (aliases followed)")

    def run(self) -> None:
        for event in self.events:
            if isinstance(event, yaml.NodeEvent):
                self.node(event, pair=False, sign=False)

    def node(self, event: yaml.NodeEvent, *, pair: bool, sign: bool) -> str:
        """Scan the node that ``event`` starts; its signature (keys sorted) when ``sign`` or ``pair``
        is set or it is anchored, else ""; ``pair``: the node is a class-pair predicate (counted by
        signature)."""
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.lim.max_aliases:
                raise self.refuse(event, "max_aliases", self.lim.max_aliases, "too many alias uses")
            nodes, signature = self.anchored.get(str(event.anchor), (1, ""))
            self.count(event, nodes)
        else:
            start = self.expanded
            self.count(event, 1)
            keep = sign or pair or event.anchor is not None
            if isinstance(event, yaml.ScalarEvent):
                signature = repr(event.value) if keep else ""
            else:
                self.depth += 1
                if self.depth > self.lim.max_depth:
                    raise self.refuse(event, "max_depth", self.lim.max_depth, "nested too deeply")
                signature = self.collection(event, keep=keep, pair=pair)
                self.depth -= 1
            if event.anchor is not None:
                self.anchored[event.anchor] = (self.expanded - start, signature)
        if pair and isinstance(event, yaml.MappingStartEvent | yaml.AliasEvent):
            self.pair_predicates.add(signature)
            if len(self.pair_predicates) > self.lim.max_pair_tables:
                raise self.refuse(event, "max_pair_tables", self.lim.max_pair_tables,
                                  "the rules need too many distinct class-pair tables")
        return signature

    def collection(self, start: yaml.NodeEvent, *, keep: bool, pair: bool) -> str:
        mapping = isinstance(start, yaml.MappingStartEvent)
        parts: list[str] = []
        key: str | None = None
        for event in self.events:
            if isinstance(event, yaml.CollectionEndEvent):
                break
            assert isinstance(event, yaml.NodeEvent)
            if mapping and key is None:  # a key
                signature = self.node(event, pair=False, sign=keep)
                key = event.value if isinstance(event, yaml.ScalarEvent) else ""
                if keep:
                    parts.append(signature)
                continue
            # a value, or a sequence item: a pair predicate under pred_vs_* (and all / any / not in one)
            inner = key in _PAIR_ROOTS or (pair and key in _PAIR_PARTS) or (not mapping and pair)
            signature = self.node(event, pair=inner, sign=keep)
            if keep and mapping:
                parts[-1] = f"{parts[-1]}:{signature}"
            elif keep:
                parts.append(signature)
            key = None
        if not keep:
            return ""
        return "{" + ",".join(sorted(parts)) + "}" if mapping else "[" + ",".join(parts) + "]"


def check_yaml(origin: str, text: str, limits: Limits | None = None) -> None:
    """Refuse ``text`` (TaxonomyTooLarge) before it is composed when it is over a limit: its size, alias
    uses, nesting, nodes with aliases expanded, and distinct class-pair predicates (as written, keys
    in any order; the compiler checks the tables it builds again). YAML errors are left to the
    loader that parses it next."""
    lim = limits or _current
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > lim.max_bytes:
        raise TaxonomyTooLarge(origin, None, (), "max_bytes", lim.max_bytes, f"the text is {size} bytes")
    try:
        _Scan(origin, text, lim).run()
    except yaml.YAMLError:
        return


def check_pair_tables(built: int, where: tuple[str, int | None], key_path: KeyPath) -> None:
    """Refuse building one more class-pair table (for the predicate at ``where``, ``key_path``)
    when ``built`` tables already reach the limit."""
    lim = _current
    if built >= lim.max_pair_tables:
        raise TaxonomyTooLarge(where[0], where[1], key_path, "max_pair_tables", lim.max_pair_tables,
                            "the rules need too many distinct class-pair tables")
