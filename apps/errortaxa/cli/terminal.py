"""What the CLI shows on a terminal: colour (never with ``NO_COLOR``, https://no-color.org) and
progress bars (never with ``--quiet``)."""

from __future__ import annotations

import os
from typing import IO

_CODES = {"green": "32", "red": "31", "yellow": "33"}


def colour_enabled(stream: IO[str]) -> bool:
    """Colour only on a terminal, and not when ``NO_COLOR`` is set non-empty or ``TERM`` is dumb."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, colour: str, enabled: bool) -> str:
    """``text`` in ``colour`` (green, red, yellow) where ``enabled``, else unchanged."""
    return f"\033[{_CODES[colour]}m{text}\033[0m" if enabled else text


def progress_enabled(quiet: bool, stream: IO[str]) -> bool:
    """Progress bars only on a terminal and without ``--quiet``."""
    return not quiet and stream.isatty()
