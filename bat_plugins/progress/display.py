"""The two displays: a rich live bar (terminal) and one plain line per event (logs, CI)."""

from __future__ import annotations

import sys
import time
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

from bat_core.pack import ConsoleMode, console_mode
from bat_core.progress import PackCallback
from bat_core.units import human_bytes


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


class LogDisplay(PackCallback):
    """One line per event, for logs and CI where a live bar would be noise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.files_total = 0
        self.files_done = 0
        self.last_bytes_line = 0.0

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def trace_blendfile(self, path: Path) -> None:
        self._line(f"tracing {path}")

    def rewrite_blendfile(self, orig: Path) -> None:
        self._line(f"rewriting paths in a copy of {orig}")

    def pack_start(self, file_count: int, byte_count: int) -> None:
        self.files_total = file_count
        self.last_bytes_line = time.monotonic()
        self._line(f"packing {file_count} files ({human_bytes(byte_count)})")

    def transfer_file(self, src: Path, dst: str) -> None:
        self.files_done += 1
        self._line(f"[{self.files_done}/{self.files_total}] {src} -> {dst}")

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        self.files_done += 1
        self._line(f"[{self.files_done}/{self.files_total}] {dst} already there, skipped")

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        self.files_done -= 1  # counted again when it is sent
        self._line(f"{dst}: not sent this round ({reason}); trying again")

    def checksum_progress(self, total_bytes: int, done_bytes: int) -> None:
        now = time.monotonic()
        if done_bytes >= total_bytes or now - self.last_bytes_line >= 10:
            self.last_bytes_line = now
            self._line(f"checksums: {human_bytes(done_bytes)} of {human_bytes(total_bytes)}")

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        now = time.monotonic()
        if now - self.last_bytes_line >= 10 and transferred_bytes < total_bytes:
            self.last_bytes_line = now
            self._line(f"{human_bytes(transferred_bytes)} of {human_bytes(total_bytes)} transferred")

    def stop(self) -> None:
        """Nothing to tear down; the CLI prints why a pack stopped and the summary."""


class ConsoleProgress(PackCallback):
    """Routes events to a bar or a log display, or nowhere, as the CLI allows."""

    def __init__(self) -> None:
        self._display: BarDisplay | LogDisplay | None = None

    def _current(self) -> BarDisplay | LogDisplay | None:
        mode = console_mode()
        if mode is ConsoleMode.OFF:
            return None
        if self._display is None:
            self._display = BarDisplay() if mode is ConsoleMode.BAR else LogDisplay()
        return self._display

    def _end(self) -> None:
        display, self._display = self._display, None
        if display is not None:
            display.stop()

    def trace_blendfile(self, path: Path) -> None:
        if d := self._current():
            d.trace_blendfile(path)

    def trace_asset(self, path: Path) -> None:
        if d := self._current():
            d.trace_asset(path)

    def missing_file(self, path: Path) -> None:
        if d := self._current():
            d.missing_file(path)

    def rewrite_blendfile(self, orig: Path) -> None:
        if d := self._current():
            d.rewrite_blendfile(orig)

    def pack_start(self, file_count: int, byte_count: int) -> None:
        if d := self._current():
            d.pack_start(file_count, byte_count)

    def transfer_file(self, src: Path, dst: str) -> None:
        if d := self._current():
            d.transfer_file(src, dst)

    def transfer_file_done(self, src: Path, dst: str) -> None:
        if d := self._current():
            d.transfer_file_done(src, dst)

    def transfer_file_skipped(self, src: Path, dst: str) -> None:
        if d := self._current():
            d.transfer_file_skipped(src, dst)

    def transfer_file_deferred(self, src: Path, dst: str, reason: str) -> None:
        if d := self._current():
            d.transfer_file_deferred(src, dst, reason)

    def checksum_progress(self, total_bytes: int, done_bytes: int) -> None:
        if d := self._current():
            d.checksum_progress(total_bytes, done_bytes)

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        if d := self._current():
            d.transfer_progress(total_bytes, transferred_bytes)

    def pack_done(self, output_blendfile: str, missing_files: list[Path]) -> None:
        if d := self._current():
            d.pack_done(output_blendfile, missing_files)
        self._end()

    def pack_aborted(self, reason: str) -> None:
        if d := self._current():
            d.pack_aborted(reason)
        self._end()
