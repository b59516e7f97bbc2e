"""The ``oov`` extra (torch, torchvision, open_clip, Pillow): whether it is installed, found without importing it."""

from __future__ import annotations

import importlib.util

MODULES = ("torch", "torchvision", "open_clip", "PIL")


def missing() -> str | None:
    """``needs the oov extra: pip install 'errortaxa[oov]' (missing: ...)``, or None when it is installed."""
    absent = [m for m in MODULES if importlib.util.find_spec(m) is None]
    return f"needs the oov extra: pip install 'errortaxa[oov]' (missing: {', '.join(absent)})" if absent else None
