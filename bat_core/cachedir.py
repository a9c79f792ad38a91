"""Where ``bat`` keeps what it may forget: checksums, S3 upload journals, blend file memos."""

from __future__ import annotations

import os
from pathlib import Path

#: Where ``bat`` keeps its caches (default: ``$XDG_CACHE_HOME/bat`` or ``~/.cache/bat``).
CACHE_DIR_ENV = "BAT_CACHE_DIR"


def cache_dir() -> Path:
    """The directory ``bat`` keeps its caches in."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "bat"
