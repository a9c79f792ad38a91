"""The plain display (one line per event, for logs and CI) and the router to it or the bar.

The bar (:mod:`.bar`) needs rich, the slowest import of a pack: it is imported
only when a bar is drawn, not for ``--progress none``, logs or library use.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bat_core.pack import ConsoleMode, console_mode
from bat_core.progress import PackCallback
from bat_core.units import human_bytes

if TYPE_CHECKING:
    from .bar import BarDisplay


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
            if mode is ConsoleMode.BAR:
                from .bar import BarDisplay

                self._display = BarDisplay()
            else:
                self._display = LogDisplay()
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
