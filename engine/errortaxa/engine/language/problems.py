"""Problems found in a taxonomy: each names its file, line and key path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One error or warning about a taxonomy."""

    file: str
    line: int | None
    key_path: KeyPath
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        path = format_key_path(self.key_path)
        return f"{where}: {self.severity}: {path + ': ' if path else ''}{self.message}"


def format_key_path(path: Sequence[str | int]) -> str:
    """``('axes', 'category', 'rules', 3, 'when')`` -> ``axes.category.rules[3].when``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class TaxonomyError(Exception):
    """Raised when a taxonomy has errors; ``problems`` holds errors and warnings."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        errors = [p for p in self.problems if p.severity == "error"]
        shown = "\n".join(str(p) for p in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        return f"{len(errors)} error(s) in taxonomy:\n{shown}{more}"
