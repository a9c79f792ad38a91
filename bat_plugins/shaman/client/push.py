"""``bat shaman push DIR URL``: any directory as a checkout, through the same transfer as ``bat pack``.

Only files are uploaded.  A symbolic link is followed when it points at a
file inside DIR; one pointing outside DIR, at a directory, or nowhere is
skipped with a warning (so a push never uploads what DIR does not hold, and
never a file twice through a loop).  Fifos, sockets and devices are refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

import click

from bat_core.targets import PackError, TransferItem
from bat_core.units import human_bytes

log = logging.getLogger(__name__)

_KINDS = {stat.S_IFIFO: "a fifo", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device"}


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def list_files(root: Path) -> list[TransferItem]:
    """Every file below ``root`` as a transfer item, its path relative to ``root``; sorted."""
    real_root = os.path.realpath(root)
    items: list[TransferItem] = []

    def refuse(path: str, mode: int) -> PackError:
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        return PackError(f"{path}: {kind}; bat shaman push uploads regular files only")

    def on_error(exc: OSError) -> None:
        raise PackError(f"cannot read {exc.filename}: {exc.strerror or exc}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    real = os.path.realpath(path)
                    if not _inside(real, real_root):
                        log.warning("skipped %s: a symbolic link to %s, outside %s", path, real, root)
                        continue
                    try:
                        st = os.stat(path)
                    except FileNotFoundError:
                        log.warning("skipped %s: a symbolic link to %s, which does not exist", path,
                                    os.readlink(path))
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        log.warning("skipped %s: a symbolic link to a directory", path)
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        raise refuse(path, st.st_mode)
                    read_from = Path(real)
                elif stat.S_ISREG(st.st_mode):
                    read_from = Path(path)
                else:
                    raise refuse(path, st.st_mode)
            except OSError as exc:
                raise PackError(f"cannot read {path}: {exc.strerror or exc}") from None
            rel = PurePosixPath(Path(path).relative_to(root).as_posix())
            items.append(TransferItem(read_from, rel, st.st_size, Path(path)))
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    items.sort(key=lambda i: i.dest.as_posix())
    return items


class _Stop:
    """SIGINT, SIGTERM and SIGHUP end a push as Ctrl-C does (partial uploads are dropped by the
    server); the exit status says which (128 + the signal). A second signal stops at once."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.received: int | None = None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        self.event.set()

    @property
    def reason(self) -> str:
        if self.received in (None, signal.SIGINT):
            return "interrupted (Ctrl-C)"
        return f"terminated ({signal.Signals(self.received).name})"


@contextlib.contextmanager
def _signals_set(event: threading.Event) -> Iterator[_Stop]:
    stop = _Stop(event)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    wanted = [signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {sig: signal.signal(sig, stop.handler) for sig in wanted}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command("push")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("url")
@click.option("--checkout", metavar="ID|PATH",
              help="The checkout to create: an ID for shaman:// (v2), a path for flamenco:// (v3). "
                   "Default: the URL's #ID or path; none: upload only.")
@click.option("--no-hash-cache", is_flag=True, help="Compute every checksum afresh (also BAT_NO_HASH_CACHE=1).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")
@click.option("--progress", type=click.Choice(["auto", "bar", "log", "none"]), default="auto",
              show_default=True, help="Progress display: a bar on a terminal, log lines otherwise.")
def push(directory: Path, url: str, checkout: str | None, no_hash_cache: bool, as_json: bool,
         progress: str) -> None:
    """Upload every file in DIRECTORY to the Shaman server at URL as one checkout.

    URL is shaman[+http]://host[:port]/#ID (Flamenco 2 API) or
    flamenco[+http]://host:port/PATH (Flamenco 3 API).  Only files the server
    lacks are sent.  Exit status: 0 done, 1 error, 130 interrupted.
    """
    from bat_core.pack import ConsoleMode, console_output, transfer_files
    from bat_core.plugins import get_registry
    from bat_core.progress import CallbackGroup

    from . import make_target
    from .urls import api_of, check_checkout, resolve_endpoint

    api = api_of(url)
    if api is None:
        raise PackError(f"{url}: not a Shaman URL; use shaman[+http]://host/#ID (v2) or "
                        f"flamenco[+http]://host/PATH (v3)")
    endpoint = resolve_endpoint(url, api)
    if checkout is not None:
        check_checkout(api, checkout, url)
        endpoint = dataclasses.replace(endpoint, checkout=checkout)
    items = list_files(directory)
    target = make_target(endpoint)
    quiet = logging.getLogger().getEffectiveLevel() >= logging.ERROR
    if progress == "none" or ((as_json or quiet) and progress == "auto"):
        mode = ConsoleMode.OFF
    elif progress == "bar" or (progress == "auto" and sys.stderr.isatty()):
        mode = ConsoleMode.BAR
    else:
        mode = ConsoleMode.LOG
    callback = CallbackGroup(get_registry().callbacks)
    abort = threading.Event()
    with _signals_set(abort) as stop, console_output(mode):
        try:
            outcome = transfer_files(target, items, callback=callback, abort=abort,
                                     checksum_cache=not no_hash_cache)
        except PackError as exc:
            callback.pack_aborted(str(exc))
            raise
        if outcome.aborted:
            callback.pack_aborted(stop.reason)
        else:
            callback.pack_done(target.display(PurePosixPath(".")), [])
    info = target.transfer.report()
    actions = list(outcome.actions.values())
    sent = [i for n, i in enumerate(outcome.items) if outcome.actions[n] in ("copied", "rewritten")]
    report: dict[str, Any] = {
        "directory": str(directory), "target": url, "aborted": outcome.aborted,
        "files": len(items), "uploaded": len(sent), "uploaded_bytes": sum(i.size for i in sent),
        "already_there": actions.count("skipped"), "rounds": outcome.rounds,
        "checksums": {"hashed_files": outcome.hashed_files, "hashed_bytes": outcome.hashed_bytes,
                      "cached": outcome.cached_checksums},
        "target_info": info,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if outcome.aborted:
        click.echo(f"bat: {stop.reason}; the files uploaded so far stay on the server", err=True)
        sys.exit(128 + (stop.received or signal.SIGINT))
    if not quiet:
        click.echo(f"pushed {directory}: {len(items)} files, {len(sent)} uploaded "
                   f"({human_bytes(report['uploaded_bytes'])}), {report['already_there']} already on the server",
                   err=True)
        for key, value in info.items():
            click.echo(f"{key.replace('_', ' ')}: {value}", err=True)
