"""Turning user errors into one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from errortaxa.engine import SampleError, TaxonomyError
from errortaxa.engine.inputs import InputError
from errortaxa.engine.providers.factory import ProviderError


class UsageError(Exception):
    """Wrong or missing command-line arguments."""


@dataclass
class Status:
    code: int = 0


@contextmanager
def user_errors() -> Iterator[Status]:
    """Report the errors a user can fix (bad input, bad taxonomy, missing file) in one line."""
    status = Status()
    try:
        yield status
    except TaxonomyError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        status.code = 2
    except (InputError, SampleError, UsageError, ProviderError) as exc:
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
