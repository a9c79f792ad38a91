"""What a target plugin provides (re-exported from :mod:`bat_core.targets`, where it is defined)."""

from ..targets import (
    CHUNK_SIZE,
    SendOutcome,
    Target,
    Transfer,
    TransferIO,
    TransferItem,
)

__all__ = ["CHUNK_SIZE", "SendOutcome", "Target", "Transfer", "TransferIO", "TransferItem"]
