"""What ``-v`` and ``-d`` log: a callback that turns trace and pack events into log records.

``-v`` (INFO) tells what is being done: each blend file traced, the plan, each
blend file rewritten, the end.  ``-d`` (DEBUG) adds every asset found or
missing and every file transferred or skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..progress import PackCallback

log = logging.getLogger("bat_core.cli")


class ActivityLog(PackCallback):
    def __init__(self) -> None:
        self.assets = 0
        self.missing = 0

    def trace_blendfile(self, path: Path) -> None:
        log.info("tracing %s", path)

    def trace_asset(self, path: Path) -> None:
        self.assets += 1
        log.debug("found %s", path)

    def missing_file(self, path: Path) -> None:
        self.missing += 1
        log.debug("missing %s", path)

    def pack_start(self, file_count: int, byte_count: int) -> None:
        log.info("plan: %d files, %d bytes to consider", file_count, byte_count)

    def rewrite_blendfile(self, orig: Path) -> None:
        log.info("rewriting paths in a copy of %s", orig)

    def transfer_file(self, src: Path, dst: str) -> None:
        log.debug("transferring %s -> %s", src, dst)

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        log.debug("skipped %s: %s is already up to date", src, dst)

    def pack_done(self, output_blendfile: str, missing_files: list[Path]) -> None:
        log.info("pack done: %s (%d missing)", output_blendfile, len(missing_files))

    def pack_aborted(self, reason: str) -> None:
        log.info("pack stopped: %s", reason)
