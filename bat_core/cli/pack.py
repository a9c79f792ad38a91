"""``bat pack``: pack a blend file and its dependencies into a directory, ZIP file or plugin target."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ..pack import ConsoleMode, Packer, PackError, PackResult, console_output
from ..pack.result import EXCLUDED

EXIT_MISSING = 3
EXIT_ABORTED = 130


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Terminated(Exception):
    """A second SIGTERM/SIGHUP: stop now (the pack still removes its partial files on the way out)."""


class _Signals:
    """SIGINT, SIGTERM and SIGHUP stop the pack cleanly; a second one interrupts at once.

    A pack stopped by SIGTERM ends as one stopped by Ctrl-C: the transfers
    remove their partial files, the directories they made and left empty, and
    the temporary directory; only the exit status differs (128 + the signal).
    """

    def __init__(self, packer: Packer) -> None:
        self.packer = packer
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def exit_status(self) -> int:
        return 128 + (self.received or signal.SIGINT)

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(signal.Signals(signum).name)
        self.received = signum
        if signum == signal.SIGINT:
            self.packer.abort("interrupted (Ctrl-C)")
        else:
            self.packer.abort(f"terminated ({signal.Signals(signum).name})")

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


def _console_mode(progress: str, as_json: bool) -> ConsoleMode:
    if progress == "none" or (as_json and progress == "auto"):
        return ConsoleMode.OFF
    if progress == "bar" or (progress == "auto" and sys.stderr.isatty()):
        return ConsoleMode.BAR
    return ConsoleMode.LOG


def _print_plan(result: PackResult) -> None:
    for f in result.files:
        if f.action == EXCLUDED:
            click.echo(f"{f.source}  (excluded: {f.reason})")
        else:
            note = "  (rewritten)" if f.action == "rewrite" else ""
            click.echo(f"{f.source} -> {f.destination}{note}")


def _summary(result: PackResult) -> str:
    s = result.summary()
    if result.noop:
        planned = len(result.files) - s["excluded"]
        head = f"would pack {planned} files into {result.target}"
    elif result.aborted or result.error:
        head = f"pack stopped after {s['files']} files ({_human(s['bytes'])}); " \
               f"{s['not_transferred']} not transferred"
    else:
        head = f"packed {result.output}: {s['files']} files ({_human(s['bytes'])}) in {s['seconds']:.1f} s"
    parts = [f"{s[k]} {k}" for k in ("copied", "rewritten", "skipped", "excluded", "missing") if s[k]]
    return head + (" - " + ", ".join(parts) if parts else "")


def _report(result: PackResult, as_json: bool, quiet: bool) -> None:
    if as_json:
        json.dump(result.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        click.echo()
    elif result.noop:
        _print_plan(result)
    if quiet and not result.missing:
        return
    for m in result.missing:
        users = ", ".join(sorted({f"{r.block} in {r.blendfile.name}" for r in m.referenced_by}))
        click.echo(f"missing: {m.path} (used by {users})", err=True)
    if not quiet:
        click.echo(_summary(result), err=True)


@click.command("pack")
@click.argument("blendfile", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("target")
@click.option("-p", "--project", type=click.Path(path_type=Path, file_okay=False),
              help="Project root (default: the blend file's directory). Files inside it keep their "
                   "project-relative path; the others go under _outside_project/.")
@click.option("-n", "--noop", is_flag=True, help="Print what would be packed; write nothing.")
@click.option("-e", "--exclude", "excludes", multiple=True, metavar="GLOB",
              help="Leave out files matching GLOB (matched from the end of the path, e.g. '*.abc'); "
                   "repeatable, or several globs separated by spaces.")
@click.option("-c", "--compress", is_flag=True, help="Compress the packed blend files with zstd.")
@click.option("-r", "--relative-only", is_flag=True,
              help="Skip dependencies given by an absolute path and leave those paths as they are "
                   "(the receiver sees them at the same place).")
@click.option("--target-scheme", "scheme", metavar="NAME",
              help="Target plugin to use (see `bat plugins`); default: chosen from TARGET.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON report on stdout: every file with its action, the missing files.")
@click.option("--progress", type=click.Choice(["auto", "bar", "log", "none"]), default="auto",
              show_default=True, help="Progress display: a bar on a terminal, log lines otherwise.")
@click.pass_obj
def pack_cmd(obj: Any, blendfile: Path, target: str, project: Path | None, noop: bool,
             excludes: tuple[str, ...], compress: bool, relative_only: bool, scheme: str | None,
             as_json: bool, progress: str) -> None:
    """Pack BLENDFILE and everything it depends on into TARGET (a directory or a .zip file).

    Blend files whose paths change are rewritten in copies; source files are
    never modified. Exit status: 0 done, 1 error, 3 done but some dependencies
    are missing, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """
    globs = [g for arg in excludes for g in arg.split()]
    quiet = logging.getLogger().getEffectiveLevel() >= logging.ERROR  # bat -q
    if quiet and progress == "auto":
        progress = "none"
    packer = Packer(blendfile, target, project=project, noop=noop, exclude=globs, compress=compress,
                    relative_only=relative_only, target_scheme=scheme,
                    strict_pointers=bool(obj and obj.strict_pointers))
    signals = _Signals(packer)
    try:
        with packer, signals, console_output(_console_mode(progress, as_json)):
            try:
                packer.plan()
                result = packer.execute()
            except PackError as exc:
                if exc.result is not None:
                    _report(exc.result, as_json, quiet)
                raise
    except Terminated as exc:
        click.echo(f"bat: terminated ({exc})", err=True)
        sys.exit(signals.exit_status)
    _report(result, as_json, quiet)
    if result.aborted:
        click.echo(f"bat: {result.abort_reason}", err=True)
        sys.exit(signals.exit_status if signals.received is not None else EXIT_ABORTED)
    if result.missing:
        sys.exit(EXIT_MISSING)


def register(cli: click.Group) -> None:
    cli.add_command(pack_cmd)
