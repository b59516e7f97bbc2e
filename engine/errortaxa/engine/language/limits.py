"""Bounds on what reading and compiling one taxonomy may cost, checked before the work is done.

A YAML text is scanned as a stream of parser events (no nodes, no objects built) before it is
composed: its size, its alias uses, its nesting depth and the number of nodes it expands to with
every alias followed (what walking or validating the document costs) are bounded, so an alias bomb
or a deeply nested document is refused in milliseconds. The compiler asks ``check_pair_tables``
before it builds another class-pair table (C x C booleans each). Each refusal is a
``TaxonomyTooLarge`` naming the limit and its value. The limits are process-wide: the server sets
them from its configuration (``configure``), the CLI uses the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
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
                raise ValueError(f"taxonomy limit {key} must be positive, got {value}")
        return self


class TaxonomyTooLarge(TaxonomyError):
    """A taxonomy refused for its size, not its content; ``limit`` and ``value`` name the bound."""

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
