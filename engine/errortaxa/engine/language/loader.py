"""Read taxonomy YAML (``yaml`` SafeLoader only), resolve ``extends``, validate with the schema.

Every problem names the file, line and key path it comes from, also for keys that a taxonomy
inherited from the one it extends.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from errortaxa.engine.language.limits import check_yaml
from errortaxa.engine.language.problems import KeyPath, Problem, TaxonomyError, TaxonomyNotFound
from errortaxa.engine.language.schema import TAG_KEYS, TaxonomyDocument
from pydantic import ValidationError

DEFAULT_TAXONOMY = "imagenet/peychev2023"


def rules_dir() -> Path:
    """The directory of the built-in taxonomies (``rules/`` in a checkout, package data when installed)."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[4] / "rules", here.parents[2] / "rules"):
        if (candidate / (DEFAULT_TAXONOMY + ".yaml")).is_file():
            return candidate
    raise FileNotFoundError("the built-in rules directory is missing from this installation")


@dataclass(frozen=True)
class SourceFile:
    """One YAML file of a taxonomy chain with the line of every key path in it."""

    path: str
    text: str
    lines: dict[KeyPath, int]
    untrusted: bool = False  # uploaded text: its resource files are looked up only in data directories

    def line_of(self, path: KeyPath) -> int | None:
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None


@dataclass
class LoadedTaxonomy:
    """A validated document and where each of its parts came from."""

    document: TaxonomyDocument
    raw: dict[str, Any]
    sources: list[SourceFile]
    origins: dict[KeyPath, tuple[SourceFile, KeyPath]] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.sources[0].path

    def locate(self, path: KeyPath) -> tuple[str, int | None]:
        """The file and line that a key path of the merged document comes from."""
        hit = _resolve(self.origins, path)
        source, original = hit if hit is not None else (self.sources[0], path)
        return source.path, source.line_of(original)

    def problem(self, path: KeyPath, message: str, severity: str = "error") -> Problem:
        file, line = self.locate(path)
        return Problem(file, line, path, message, "warning" if severity == "warning" else "error")

    def resource_dir(self, name: str) -> Path | None:
        """The directory that a resource's relative file names are resolved against (None for a
        resource declared by untrusted text: only plain file names in the data directories)."""
        hit = _resolve(self.origins, ("resources", name))
        source = hit[0] if hit is not None else self.sources[0]
        return None if source.untrusted else Path(source.path).parent


def load_taxonomy(
    source: str | Path | None = None, *, text: str | None = None, builtin_parents_only: bool = False,
) -> LoadedTaxonomy:
    """Load a taxonomy from a path, a built-in name (``imagenet/peychev2023``) or YAML ``text``.

    ``None`` loads the embedded default.  With ``builtin_parents_only`` (for untrusted ``text``, e.g. an
    upload) ``extends`` resolves only to files inside the search roots, never to one relative to the
    working directory or an absolute path.  Raises TaxonomyError with every problem found.
    """
    roots = [rules_dir()]
    if text is not None:
        origin = str(source) if source is not None else "<text>"
        base = None if builtin_parents_only else Path.cwd()
        return _load_chain(origin, text, base, roots, chain=(), contained=builtin_parents_only)
    path = _find(str(source) if source is not None else DEFAULT_TAXONOMY, Path.cwd(), roots)
    if path is None:
        raise TaxonomyNotFound([Problem(str(source), None, (), "no such taxonomy file or built-in name")])
    return _load_chain(str(path), _read(path), path.parent, roots, chain=(), contained=builtin_parents_only)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError([Problem(str(path), None, (), f"cannot read: {exc}")]) from exc


def _find(ref: str, base: Path | None, roots: list[Path], *, contained: bool = False) -> Path | None:
    """A path relative to ``base`` (if any) or absolute, else a store name looked up in ``roots``.

    ``contained``: only a file inside one of ``roots`` (after resolving links and ``..``) is found.
    """
    candidates: list[Path] = []
    if base is not None:
        candidates.append((base / ref) if not Path(ref).is_absolute() else Path(ref))
    for root in roots:
        candidates += [root / ref, root / (ref + ".yaml")]
    inside = [root.resolve() for root in roots] if contained else []
    for candidate in candidates:
        if candidate.is_file():
            found = candidate.resolve()
            if not contained or any(found.is_relative_to(root) for root in inside):
                return found
    return None


def _load_chain(
    origin: str, text: str, base: Path | None, roots: list[Path], chain: tuple[str, ...], *, contained: bool
) -> LoadedTaxonomy:
    source, raw = parse_yaml(origin, text)
    if contained and not chain:
        source = replace(source, untrusted=True)
    parent_ref = raw.get("extends")
    origins: dict[KeyPath, tuple[SourceFile, KeyPath]] = {}
    sources = [source]
    if parent_ref is not None:
        if not isinstance(parent_ref, str):
            raise TaxonomyError([Problem(origin, source.line_of(("extends",)), ("extends",), "must be a string")])
        parent_path = _find(parent_ref, base, roots, contained=contained)
        if parent_path is None:
            why = ("an uploaded taxonomy can only extend a built-in name" if contained
                   else "not a file, not a built-in name")
            raise TaxonomyError([Problem(origin, source.line_of(("extends",)), ("extends",),
                                         f"no taxonomy '{parent_ref}' ({why})")])
        if str(parent_path) in (*chain, origin):
            cycle = " -> ".join([*chain, origin, str(parent_path)])
            raise TaxonomyError([Problem(origin, source.line_of(("extends",)), ("extends",),
                                         f"cyclic extends: {cycle}")])
        parent = _load_chain(str(parent_path), _read(parent_path), parent_path.parent, roots, (*chain, origin),
                             contained=contained)
        raw, origins = _merge(parent.raw, parent.origins, raw, source)
        sources += parent.sources
    else:
        origins = {(): (source, ())}
    raw.pop("extends", None)
    try:
        document = TaxonomyDocument.model_validate(raw)
    except ValidationError as exc:
        loaded = LoadedTaxonomy(TaxonomyDocument.model_construct(), raw, sources, origins)
        raise TaxonomyError([loaded.problem(_loc(err["loc"]), err["msg"]) for err in exc.errors()]) from None
    return LoadedTaxonomy(document, raw, sources, origins)


def _loc(loc: tuple[Any, ...]) -> KeyPath:
    """Pydantic's error location without the union-tag entries it adds."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        # a tag is followed by the same name as the field it selects: keep only one
        if isinstance(part, str) and part in TAG_KEYS and i + 1 < len(loc) and loc[i + 1] == part:
            continue
        if isinstance(part, str) and part in ("cooccurrence", "sample_list", "class_mapping") \
                and len(out) >= 2 and out[-2] == "resources":
            continue
        out.append(part)
    return tuple(out)


# libyaml's SafeLoader when PyYAML was built with it (same documents, node lines and error marks; ~10x faster)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(origin: str, text: str) -> tuple[SourceFile, dict[str, Any]]:
    """Parse with the SafeLoader, recording the line of every key path; duplicate keys are errors.
    A text over the limits (language.limits) is refused before it is parsed."""
    check_yaml(origin, text)
    loader = _SAFE_LOADER(text)
    try:  # one parse: the node tree (for lines) and the data constructed from it
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise TaxonomyError([Problem(origin, line, (), f"invalid YAML: {getattr(exc, 'problem', exc)}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict) or node is None:
        raise TaxonomyError([Problem(origin, 1, (), "a taxonomy file must be a YAML mapping")])
    lines: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    _walk(node, (), lines, problems, origin)
    if problems:
        raise TaxonomyError(problems)
    return SourceFile(origin, text, lines), data


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], problems: list[Problem], origin: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(Problem(origin, key_node.start_mark.line + 1, (*path, key), "duplicate key"))
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, problems, origin)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, problems, origin)


# ---------------------------------------------------------------- extends


def _merge(
    parent: dict[str, Any], parent_origins: dict[KeyPath, tuple[SourceFile, KeyPath]],
    child: dict[str, Any], source: SourceFile,
) -> tuple[dict[str, Any], dict[KeyPath, tuple[SourceFile, KeyPath]]]:
    """Child over parent: scalars replace, named maps merge by key (null removes), axes merge
    values by id and rules by id with before/after/remove; cases are not inherited."""
    merged = copy.deepcopy(parent)
    origins = dict(parent_origins)
    problems: list[Problem] = []
    for key, value in child.items():
        if key in ("resources", "superclasses") and isinstance(value, dict):
            section = merged.setdefault(key, {})
            for name, item in value.items():
                if item is None:
                    section.pop(name, None)
                else:
                    section[name] = item
                    origins[(key, name)] = (source, (key, name))
        elif key == "axes" and isinstance(value, dict):
            axes = merged.setdefault("axes", {})
            for axis_name, axis in value.items():
                if not isinstance(axis, dict):
                    axes[axis_name] = axis
                    origins[("axes", axis_name)] = (source, ("axes", axis_name))
                    continue
                old = axes.setdefault(axis_name, {"values": [], "rules": []})
                for part in ("values", "rules"):
                    updates = axis.get(part, [])
                    where = ("axes", axis_name, part)
                    if not isinstance(updates, list):
                        problems.append(Problem(source.path, source.line_of(where), where,
                                                "must be a list of items with an 'id'"))
                        continue
                    _merge_list(where, old.setdefault(part, []), updates, source, origins, problems)
        elif key != "cases":
            merged[key] = value
            origins[(key,)] = (source, (key,))
    merged["cases"] = child.get("cases", [])
    origins[("cases",)] = (source, ("cases",))
    if problems:
        raise TaxonomyError(problems)
    return merged, origins


def _resolve(
    origins: dict[KeyPath, tuple[SourceFile, KeyPath]], path: KeyPath
) -> tuple[SourceFile, KeyPath] | None:
    for cut in range(len(path), -1, -1):
        hit = origins.get(path[:cut])
        if hit is not None:
            return hit[0], hit[1] + path[cut:]
    return None


def _merge_list(
    prefix: KeyPath, items: list[Any], updates: list[Any], source: SourceFile,
    origins: dict[KeyPath, tuple[SourceFile, KeyPath]], problems: list[Problem],
) -> None:
    """Merge a list of {id: ...} items in place (replace, remove, move or insert before / after an
    id, append), keeping ``origins`` pointing at each item's file. The order is kept as a linked
    list while merging, so each update costs the same however long the list is."""
    Origin = tuple[SourceFile, KeyPath] | None
    end = -1  # the sentinel of a circular list: nxt[end] is the first entry, prv[end] the last
    nxt: dict[int, int] = {end: end}
    prv: dict[int, int] = {end: end}
    entries: dict[int, tuple[Any, Origin]] = {}
    by_id: dict[Any, int] = {}
    nodes = itertools.count()

    def insert(item: Any, origin: Origin, after: int) -> None:
        node = next(nodes)
        entries[node] = (item, origin)
        following = nxt[after]
        nxt[after], prv[node], nxt[node], prv[following] = node, after, following, node
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            by_id.setdefault(item["id"], node)

    def unlink(node: int) -> None:
        before, following = prv.pop(node), nxt.pop(node)
        nxt[before], prv[following] = following, before
        item, _ = entries.pop(node)
        by_id.pop(item["id"], None)

    for i, item in enumerate(items):
        insert(item, _resolve(origins, (*prefix, i)), prv[end])
    for j, update in enumerate(updates):
        where = (*prefix, j)
        if not isinstance(update, dict) or not isinstance(update.get("id"), str):
            insert(update, (source, where), prv[end])  # not an item with an id: the schema says so
            continue
        anchor = update.get("before") or update.get("after")
        existing = by_id.get(update["id"])
        if update.get("remove"):
            if existing is None:
                problems.append(Problem(source.path, source.line_of(where), where,
                                        f"cannot remove '{update['id']}': the base taxonomy has no such id"))
            else:
                unlink(existing)
            continue
        clean = {k: v for k, v in update.items() if k not in ("before", "after")}
        if existing is not None and anchor is None:
            entries[existing] = (clean, (source, where))
            continue
        if existing is not None:
            unlink(existing)
        if anchor is None:
            insert(clean, (source, where), prv[end])
            continue
        target = by_id.get(anchor) if isinstance(anchor, str) else None
        if target is None:
            problems.append(Problem(source.path, source.line_of(where), where,
                                    f"'{anchor}' named in before/after is not in the base taxonomy"))
            continue
        insert(clean, (source, where), target if update.get("after") else prv[target])
    merged: list[tuple[Any, Origin]] = []
    node = nxt[end]
    while node != end:
        merged.append(entries[node])
        node = nxt[node]
    items[:] = [item for item, _ in merged]
    item_origins = [origin for _, origin in merged]
    for key in [k for k in origins if k[: len(prefix)] == prefix and len(k) > len(prefix)]:
        del origins[key]
    for i, origin in enumerate(item_origins):
        if origin is not None:
            origins[(*prefix, i)] = origin
