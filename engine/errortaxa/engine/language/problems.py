"""Problems found in a taxonomy: each names its file, line and key path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from errortaxa.engine.errors import ErrorTaxaError, InvalidInput, KeyPath, Location, NotFound, format_key_path

__all__ = ["InvalidTaxonomy", "KeyPath", "Problem", "TaxonomyError", "TaxonomyNotFound", "format_key_path"]


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


class TaxonomyError(ErrorTaxaError):
    """The group of errors about a taxonomy: ``problems`` holds its errors and warnings (catch it;
    ``TaxonomyError(problems)`` makes an :class:`InvalidTaxonomy`). The location is the first
    error's; the string is one line, that error and how many more (the CLI lists ``problems``, one a
    line)."""

    code = "TAXONOMY_INVALID"

    def __init__(self, problems: Iterable[Problem] = ()) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        first = errors[0] if errors else None
        location = None if first is None else Location(file=first.file, line=first.line, key_path=first.key_path)
        reason = first.message if first is not None else "no problems"
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        super().__init__(reason + more, location)

    @classmethod
    def _concrete(cls, *args: Any, **kwargs: Any) -> type[ErrorTaxaError]:
        return InvalidTaxonomy if cls is TaxonomyError else super()._concrete(*args, **kwargs)


class InvalidTaxonomy(TaxonomyError, InvalidInput):
    """A taxonomy with errors: YAML, schema, references, rules."""


class TaxonomyNotFound(TaxonomyError, NotFound):
    """No taxonomy file or built-in taxonomy of that name."""

    code = "NOT_FOUND"
