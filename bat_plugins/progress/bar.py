"""The live progress bar of ``bat pack`` on a terminal (rich)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from bat_core.progress import PackCallback


class BarDisplay(PackCallback):
    """Tracing spinner, then files and bytes done, the current file, speed and ETA."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.console = Console(file=stream or sys.stderr)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[current]}", style="dim"),
            console=self.console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.files_total = 0
        self.files_done = 0
        self.found = 0
        self.progress.start()
        self.trace_task = self.progress.add_task("tracing", total=None, files="", current="")

    def _trace_update(self, path: Path | None = None) -> None:
        self.progress.update(self.trace_task, files=f"{self.found} files",
                             current=path.name if path is not None else "")

    def trace_blendfile(self, path: Path) -> None:
        self._trace_update(path)

    def trace_asset(self, path: Path) -> None:
        self.found += 1
        self._trace_update(path)

    def rewrite_blendfile(self, orig: Path) -> None:
        self.progress.update(self.trace_task, description="rewriting", current=orig.name)

    def pack_start(self, file_count: int, byte_count: int) -> None:
        self.progress.remove_task(self.trace_task)
        self.files_total = file_count
        self.task = self.progress.add_task("packing", total=byte_count or None,
                                           files=f"0/{file_count} files", current="")

    def checksum_progress(self, total_bytes: int, done_bytes: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, description="checksums", total=total_bytes or None,
                                 completed=done_bytes)

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, current=f"{src.name}: later ({reason})")

    def _file(self, name: str) -> None:
        self.files_done += 1
        if self.task is not None:
            self.progress.update(self.task, files=f"{self.files_done}/{self.files_total} files")

    def transfer_file(self, src: Path, dst: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, current=src.name)

    def transfer_file_done(self, src: Path, dst: str) -> None:
        self._file(src.name)

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        self._file(src.name)

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, description="packing", total=total_bytes or None,
                                 completed=transferred_bytes)

    def stop(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, current="")
        self.progress.stop()
