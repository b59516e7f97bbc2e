"""Turning user errors into one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from errortaxa.engine.errors import KINDS, ErrorTaxaError, InvalidInput, Unavailable
from errortaxa.engine.language.problems import TaxonomyError

#: The kind of a server's answer, by its gRPC status code's name (``classify --server``); a status
#: of no kind (INTERNAL, UNKNOWN, ...) says the server could not answer: Unavailable.
KIND_OF_STATUS: dict[str, type[ErrorTaxaError]] = {kind.status: kind for kind in KINDS}


class UsageError(InvalidInput):
    """Wrong or missing command-line arguments."""

    code = "USAGE"


def remote_error(server: str, status: str, message: str) -> ErrorTaxaError:
    """A server's error answer (its status code's name and message) as the error of its kind."""
    return KIND_OF_STATUS.get(status, Unavailable)(f"server {server}: {status}: {message}")


@dataclass
class Status:
    code: int = 0


@contextmanager
def user_errors() -> Iterator[Status]:
    """Report the errors a user can fix in one line each, exit status 2: every error of the tree
    (errortaxa.engine.errors, of any kind), and missing files. A taxonomy error lists its problems,
    one a line."""
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
