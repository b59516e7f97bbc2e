"""Turning user errors into one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from errortaxa.engine.errors import ErrorTaxaError, InvalidInput
from errortaxa.engine.language.problems import TaxonomyError


class UsageError(InvalidInput):
    """Wrong or missing command-line arguments."""

    code = "USAGE"


@dataclass
class Status:
    code: int = 0


@contextmanager
def user_errors() -> Iterator[Status]:
    """Report the errors a user can fix in one line each, exit status 2: every engine error (of any
    kind: invalid input, not found, failed precondition, limit exceeded), and missing files. A
    taxonomy error lists its problems, one a line."""
    status = Status()
    try:
        yield status
    except TaxonomyError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        status.code = 2
    except ErrorTaxaError as exc:
        print(f"errortaxa: error: {exc}", file=sys.stderr)
        status.code = 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"errortaxa: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        status.code = 2
    except BrokenPipeError:
        status.code = 0
    except KeyboardInterrupt:
        print("errortaxa: interrupted", file=sys.stderr)
        status.code = 130
