"""Ray, the optional cluster runtime (``pip install 'errortaxa[ray]'``), as the providers (``oov index
--ray``) and the applications (``study --ray``) start it: here in the engine, the one layer both may
import (the engine itself never runs Ray; ``ray`` is imported only when a job starts)."""

from __future__ import annotations

import os
from typing import Any

from errortaxa.engine.errors import FailedPrecondition


class RayNotInstalled(FailedPrecondition):
    """The optional ``ray`` extra is not installed."""


def import_ray(data: bool = False) -> Any:
    """The ``ray`` module (and ``ray.data`` with ``data``), or :class:`RayNotInstalled` with the fix."""
    try:
        import ray

        if data:
            import ray.data
    except ImportError:  # the one missing-extra form of the CLI (errortaxa.cli.extras)
        raise RayNotInstalled("'--ray' needs the ray extra: pip install 'errortaxa[ray]'") from None
    return ray


def init_ray(address: str) -> bool:
    """Connect to ``address`` (``"local"``: start a local instance without dashboard or usage
    statistics). Returns whether this call started Ray (the caller then shuts it down)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address == "local":
        ray.init(**kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True


__all__ = ["RayNotInstalled", "import_ray", "init_ray"]
