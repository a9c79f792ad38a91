"""Exceptions that the CLI turns into a one-line ``bat: error: ...`` message."""

from __future__ import annotations

import os


class BatError(Exception):
    """Base class for every error ``bat`` reports to a user without a traceback."""


class BlendFileError(BatError):
    """A blend file cannot be read: not a blend file, truncated, corrupt DNA, ..."""

    def __init__(self, path: os.PathLike[str] | str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{os.fspath(path)}: {message}")


class UnknownPointerError(BlendFileError):
    """A pointer refers to an address no block has (an error only in strict mode)."""
