"""Problems found in a taxonomy: each names its file, line and key path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from errortaxa.engine.errors import InvalidInput, KeyPath, Location, NotFound, format_key_path

__all__ = ["KeyPath", "Problem", "TaxonomyError", "TaxonomyNotFound", "format_key_path"]


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


class TaxonomyError(InvalidInput):
    """Raised when a taxonomy has errors; ``problems`` holds errors and warnings. The location is
    the first error's; the string lists the errors, one a line."""

    code = "TAXONOMY_INVALID"

    def __init__(self, problems: Iterable[Problem] = ()) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        first = errors[0] if errors else None
        location = None if first is None else Location(file=first.file, line=first.line, key_path=first.key_path)
        super().__init__(first.message if first is not None else "no problems", location)

    def __str__(self) -> str:
        errors = [p for p in self.problems if p.severity == "error"]
        shown = "\n".join(str(p) for p in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        return f"{len(errors)} error(s) in taxonomy:\n{shown}{more}"


class TaxonomyNotFound(NotFound, TaxonomyError):
    """No taxonomy file or built-in taxonomy of that name."""

    code = "NOT_FOUND"
