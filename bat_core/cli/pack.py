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
from ..units import human_bytes
from .activity import ActivityLog
from .common import EXIT_INTERRUPTED, EXIT_MISSING, check_blendfile, state

EXIT_ABORTED = EXIT_INTERRUPTED

log = logging.getLogger("bat_core.cli")


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
    """The plan of ``-n``: on stdout BAT 1.x's ``source -> destination`` lines, nothing else
    (scripts parse them); which blend files are rewritten and what is excluded, on stderr."""
    for f in result.files:
        if f.action != EXCLUDED:
            click.echo(f"{f.source} -> {f.destination}")
    for f in result.files:
        if f.action == "rewrite":
            click.echo(f"rewritten: {f.source} (its paths change in the pack)", err=True)
        elif f.action == EXCLUDED:
            click.echo(f"excluded: {f.source} ({f.reason})", err=True)


def _summary(result: PackResult) -> str:
    s = result.summary()
    if result.noop:
        head = f"would pack {s['files']} files into {result.target}"
    elif result.aborted or result.error:
        head = f"pack stopped after {s['files']} files ({human_bytes(s['bytes'])}); " \
               f"{s['not_transferred']} not transferred"
    else:
        head = f"packed {result.output}: {s['files']} files ({human_bytes(s['bytes'])}) in {s['seconds']:.1f} s"
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
        why = "" if m.reason == "missing" else f" ({m.reason})"
        click.echo(f"missing: {m.shown or m.path}{why} (used by {users})", err=True)
    if not quiet:
        click.echo(_summary(result), err=True)
        for key, value in result.target_info.items():
            click.echo(f"{key.replace('_', ' ')}: {value}", err=True)


class _PackCommand(click.Command):
    """``bat pack`` with BAT 1.x's ``-e GLOB [GLOB ...]`` (see :func:`expand_excludes`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_excludes(args, self.params))


def expand_excludes(args: list[str], params: list[click.Parameter], positionals: int = 2) -> list[str]:
    """Turn BAT 1.x's ``-e '*.abc' '*.vbo'`` (argparse ``nargs='*'``) into one ``--exclude=`` per glob.

    ``-e`` takes the words after it up to the next option, as argparse does;
    unlike argparse, when that leaves fewer than ``positionals`` arguments
    (``bat pack -e '*.abc' shot.blend out``) the last words are given back to
    BLENDFILE and TARGET instead of failing.
    """
    takes_value: set[str] = set()
    flags: set[str] = set()
    for p in params:
        if isinstance(p, click.Option):
            names = [*p.opts, *p.secondary_opts]
            (flags if p.is_flag or p.count else takes_value).update(names)
    exclude_opts = {"-e", "--exclude"}
    out: list[str] = []
    groups: list[tuple[int, list[str]]] = []  # (position in out, the words -e took)
    free = 0
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            free += len(args) - i
            out.extend(args[i - 1 :])
            break
        cluster_e = (len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and arg[-1] == "e"
                     and all(f"-{c}" in flags for c in arg[1:-1]))
        if arg in exclude_opts or cluster_e:
            if cluster_e:
                out.append(arg[:-1])
            words: list[str] = []
            while i < len(args) and not (args[i].startswith("-") and len(args[i]) > 1):
                words.append(args[i])
                i += 1
            groups.append((len(out), words))
            continue
        out.append(arg)
        if arg in takes_value and i < len(args):
            out.append(args[i])
            i += 1
        elif not arg.startswith("-") or arg == "-":
            free += 1
    # Give words back to the positional arguments, from the last group backwards.
    wanted = positionals - free
    given_back: dict[int, list[str]] = {}
    for n in range(len(groups) - 1, -1, -1):
        if wanted <= 0:
            break
        pos, words = groups[n]
        take = min(wanted, len(words))
        if take:
            given_back[n] = words[len(words) - take :]
            groups[n] = (pos, words[: len(words) - take])
            wanted -= take
    for n in range(len(groups) - 1, -1, -1):
        pos, words = groups[n]
        out[pos:pos] = [f"--exclude={w}" for w in words] + given_back.get(n, [])
    return out


@click.command("pack", cls=_PackCommand)
@click.argument("blendfile", type=click.Path(path_type=Path))
@click.argument("target")
@click.option("-p", "--project", type=click.Path(path_type=Path),
              help="Project root (default: the blend file's directory). Files inside it keep their "
                   "project-relative path; the others go under _outside_project/. A file stands for "
                   "its directory (as in BAT 1.x).")
@click.option("-n", "--noop", is_flag=True, help="Print what would be packed; write nothing.")
@click.option("-e", "--exclude", "excludes", multiple=True, metavar="GLOB",
              help="Leave out files matching GLOB (matched from the end of the path, e.g. '*.abc'). "
                   "As in BAT 1.x, -e takes every word up to the next option (-e '*.abc' '*.vbo'), "
                   "and a word may hold several globs separated by spaces; repeatable.")
@click.option("-c", "--compress", is_flag=True, help="Compress the packed blend files with zstd.")
@click.option("-r", "--relative-only", is_flag=True,
              help="Skip dependencies given by an absolute path and leave those paths as they are "
                   "(the receiver sees them at the same place).")
@click.option("--target-scheme", "scheme", metavar="NAME",
              help="Target plugin to use (see `bat plugins`); default: chosen from TARGET.")
@click.option("--no-hash-cache", "no_hash_cache", is_flag=True,
              help="Compute every checksum afresh instead of using the checksum cache "
                   "(content-addressed targets: S3, Shaman). Also BAT_NO_HASH_CACHE=1.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON report on stdout: every file with its action, the missing files.")
@click.option("--progress", type=click.Choice(["auto", "bar", "log", "none"]), default="auto",
              show_default=True, help="Progress display: a bar on a terminal, log lines otherwise.")
@click.pass_context
def pack_cmd(ctx: click.Context, blendfile: Path, target: str, project: Path | None, noop: bool,
             excludes: tuple[str, ...], compress: bool, relative_only: bool, scheme: str | None,
             no_hash_cache: bool, as_json: bool, progress: str) -> None:
    """Pack BLENDFILE and everything it depends on into TARGET (a directory, a .zip file, or a URL).

    Blend files whose paths change are rewritten in copies; source files are
    never modified. Exit status: 0 done, 1 error, 2 bad usage, 3 done but some
    dependencies are missing, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """
    st = state(ctx)
    st.json = as_json
    check_blendfile(blendfile)
    if project is not None and project.is_file():
        log.warning("project path %s is a file; using its directory %s", project, project.parent)
        project = project.parent
    globs = [g for arg in excludes for g in arg.split()]
    if globs:
        log.info("excluding %s", ", ".join(repr(g) for g in globs))
    quiet = st.quiet or logging.getLogger().getEffectiveLevel() >= logging.ERROR  # bat -q
    if quiet and progress == "auto":
        progress = "none"
    packer = Packer(blendfile, target, project=project, noop=noop, exclude=globs, compress=compress,
                    relative_only=relative_only, target_scheme=scheme,
                    strict_pointers=st.strict_pointers, checksum_cache=not no_hash_cache,
                    callback=ActivityLog())
    signals = _Signals(packer)
    try:
        with packer, signals, console_output(_console_mode(progress, as_json)):
            try:
                packer.plan()
                result = packer.execute()
            except PackError as exc:
                if exc.result is not None:
                    if not exc.result.error:
                        exc.result.error = str(exc)
                    _report(exc.result, as_json, quiet)
                    st.json_reported = as_json
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
