"""Packing: a blend file and everything it depends on, copied into a self-contained target.

``pack()`` is the one-call API; :class:`Packer` splits it into ``plan()`` and
``execute()`` and can be aborted from another thread.  Target plugins provide
a :class:`Target`: a root path and a :class:`Transfer` that moves files there.
"""

from .console import ConsoleMode, console_mode, console_output
from .engine import TransferOutcome, transfer_files
from .errors import Aborted, PackError, RetryableError
from .packer import Packer, pack
from .placement import OUTSIDE_PROJECT
from .plan import Action, PackPlan, PlannedFile
from .result import Missing, PackedFile, PackResult
from .transfer import CHUNK_SIZE, SendOutcome, Target, Transfer, TransferIO, TransferItem

__all__ = [
    "CHUNK_SIZE",
    "OUTSIDE_PROJECT",
    "Aborted",
    "Action",
    "ConsoleMode",
    "Missing",
    "PackError",
    "PackPlan",
    "PackResult",
    "PackedFile",
    "Packer",
    "PlannedFile",
    "RetryableError",
    "SendOutcome",
    "Target",
    "Transfer",
    "TransferIO",
    "TransferItem",
    "TransferOutcome",
    "console_mode",
    "console_output",
    "pack",
    "transfer_files",
]
