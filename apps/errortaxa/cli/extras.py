"""Commands whose dependencies are an extra of the package (``pip install 'errortaxa[EXTRA]'``).

Such a command stays in the parser; run without its extra, it ends in one line and exit status 2:
``errortaxa: error: 'serve' needs the serve extra: pip install 'errortaxa[serve]'``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from errortaxa.engine.errors import MissingExtra

#: Modules under ``errortaxa`` that another distribution ships (errortaxa-client).
_OTHER_DISTRIBUTIONS = ("errortaxa.client", "errortaxa.v1")


def _not_shipped(module: str | None) -> bool:
    """Whether ``module`` comes from outside this distribution (a dependency, or the client)."""
    if not module:
        return False
    return module.partition(".")[0] != "errortaxa" or module.startswith(_OTHER_DISTRIBUTIONS)


@contextmanager
def requires(command: str, extra: str | None) -> Iterator[None]:
    """Turn a missing dependency of ``command`` into MissingExtra (``extra`` None: nothing to do).
    A missing module of this distribution itself is a bug, and is raised as it is."""
    if extra is None:
        yield
        return
    try:
        yield
    except ModuleNotFoundError as exc:
        if not _not_shipped(exc.name):
            raise
        raise MissingExtra(command, extra) from None
