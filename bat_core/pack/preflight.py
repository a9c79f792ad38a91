"""Transfers that check a pack before it is made: the directory and ZIP targets.

A local target can tell the packer three things a plain :class:`Transfer`
cannot: which files already there belong to it (an earlier pack's files and
its own bookkeeping, never to be packed as dependencies), which layouts it
cannot hold (:class:`~bat_core.pack.layout.LayoutRules`), and — once the
items are known, before anything is written — whether writing them would
replace a file it does not own.  The packer calls these when the target's
transfer is a :class:`CheckedTransfer`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .layout import LayoutRules
from .transfer import Transfer, TransferItem


class CheckedTransfer(Transfer):
    """A :class:`Transfer` with the checks a local target makes before a pack."""

    def layout_rules(self) -> LayoutRules:
        """Which layout problems stop a pack into this target (asked when planning; writes nothing)."""
        return LayoutRules()

    def owns(self, real_path: str) -> bool:
        """True when ``real_path`` is one of this target's own files: never a dependency.

        Asked when planning, for every file found; must not write anything.
        """
        return False

    def preflight(self, items: Sequence[TransferItem]) -> None:
        """Check the items against what the target holds; called once, before :meth:`start`.

        Raise :class:`~bat_core.pack.PackError` naming the files when the pack
        would replace a file the target does not own.  The target may be
        created here (and its leftovers of killed packs removed), but no
        packed file may be written.
        """
        return None
