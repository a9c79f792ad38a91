"""Errors of a pack (defined in :mod:`bat_core.errors`, so target plugins can import them cheaply)."""

from ..errors import Aborted, PackError, RetryableError

__all__ = ["Aborted", "PackError", "RetryableError"]
