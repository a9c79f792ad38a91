"""``bat list``: every file a blend file depends on, grouped by blend file.

The text and ``--json`` outputs keep BAT 1.x's meaning, because scripts parse
them: only dependencies that exist are listed (missing ones are reported on
stderr and in the exit status), and ``--sha256`` puts each hash after its path
on the same line.  ``--format json-full`` is bat's own, richer report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from ..blendfile.dna import FieldPath
from ..trace import BlockUsage, Problem, problems, trace
from ..trace.report import skipped
from .activity import ActivityLog
from .common import EXIT_MISSING, check_blendfile, set_json, state

log = logging.getLogger("bat_core.cli")

FORMATS = ("text", "json", "json-full", "dot")


def sha256_of(path: Path) -> str | None:
    """The file's SHA-256; None when it cannot be read (it may have changed since the trace)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


class Hasher:
    """SHA-256 sums, each file read once, with the time spent on them (``--timing``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._done: dict[Path, str | None] = {}

    def __call__(self, path: Path) -> str | None:
        if path not in self._done:
            start = time.perf_counter()
            self._done[path] = sha256_of(path)
            self.seconds += time.perf_counter() - start
        return self._done[path]

    def text(self, path: Path) -> str:
        """For the text listing: ``-`` when the file cannot be read."""
        return self(path) or "-"


def _short(path: Path) -> str:
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def _shown(path: Path, shown: str) -> str:
    """A resolved path relative to the working directory when inside it; a foreign one as stored."""
    return _short(path) if path.is_absolute() else shown


def _resolved(path: Path) -> str:
    """A path as BAT 1.x's JSON gives it: absolute, symbolic links resolved."""
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return str(path)


def missing(usages: list[BlockUsage]) -> list[Problem]:
    """Each path that cannot be had, once (however many blocks use it), sorted.

    The one definition of "missing" (:func:`bat_core.trace.problems`, shared
    with ``bat pack``): its count is the exit status, the stderr report,
    ``--missing`` and the ``missing`` list of ``--format json-full``.
    """
    return sorted(problems(usages), key=lambda p: p.shown)


def _field_name(field: FieldPath | None) -> str | None:
    if field is None:
        return None
    parts = field if isinstance(field, (list, tuple)) else (field,)
    return ".".join(p.decode("ascii", "replace") if isinstance(p, bytes) else str(p) for p in parts)


def _block_name(u: BlockUsage) -> str:
    return u.block_name.decode("utf-8", "replace")


def _users(us: list[BlockUsage]) -> str:
    return ", ".join(sorted({f"{_block_name(u)} in {u.blendfile.name}" for u in us}))


# --- output formats ------------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(usages: list[BlockUsage]) -> str:
    """A Graphviz digraph: blend files (boxes) pointing at the files they use."""
    lines = ["digraph bat {", "  rankdir=LR;", "  node [shape=note, fontsize=10];"]
    blends: set[str] = set()
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    for u in usages:
        src = str(u.blendfile)
        blends.add(src)
        targets = [str(f) for f in u.files] or ([u.shown_path] if u.problem else [])
        for dst in targets:
            if u.kind == "library" and u.files:
                blends.add(dst)
            nodes.setdefault(dst, "missing" if not u.files else u.kind)
            edges.add((src, dst))
    for b in sorted(blends):
        lines.append(f"  {_dot_quote(b)} [shape=box, style=filled, fillcolor=lightblue];")
    for n, kind in sorted(nodes.items()):
        if n not in blends:
            style = ", color=red, fontcolor=red" if kind == "missing" else ""
            lines.append(f"  {_dot_quote(n)} [label={_dot_quote(Path(n).name + chr(10) + kind)}{style}];")
    for a, b in sorted(edges):
        lines.append(f"  {_dot_quote(a)} -> {_dot_quote(b)};")
    lines.append("}")
    return "\n".join(lines)


def bat_json(usages: list[BlockUsage], sha: Hasher | None) -> dict[str, Any]:
    """BAT 1.x's shape: each blend file -> its existing dependencies (sorted; with --sha256 a
    mapping of each dependency to its SHA-256)."""
    report: dict[str, set[str]] = defaultdict(set)
    real: dict[str, Path] = {}
    for u in usages:
        for f in u.files:
            key = _resolved(f)
            real[key] = f
            report[str(u.blendfile)].add(key)
    if sha is None:
        return {k: sorted(v) for k, v in report.items()}
    return {k: {f: sha(real[f]) for f in sorted(v)} for k, v in report.items()}


def full_json(blendfile: Path, usages: list[BlockUsage], sha: Hasher | None,
              only_missing: bool) -> dict[str, Any]:
    """bat's own report: every usage with its kind, where it is stored and whether it exists."""
    entries = []
    for u in usages:
        if only_missing and not u.problem:
            continue
        entry: dict[str, Any] = {
            "kind": u.kind,
            "exists": bool(u.files),
            "problem": u.problem or None,
            "blendfile": str(u.blendfile),
            "block": _block_name(u),
            "struct": u.block.dna_type_name,
            "field": _field_name(u.field),
            "stored_path": u.asset_path.decode_path(),
            "path": u.shown_path,
            "sequence": u.is_sequence,
            "directory": u.is_directory,
            "files": [str(f) for f in u.files],
        }
        if sha is not None:
            entry["sha256"] = {str(f): sha(f) for f in u.files}
        entries.append(entry)
    return {
        "blendfile": str(blendfile),
        "dependencies": entries,
        "missing": [p.shown for p in missing(usages)],
    }


def _missing_json(usages: list[BlockUsage]) -> list[dict[str, Any]]:
    return [{
        "path": p.shown,
        "reason": p.reason,
        "referenced_by": [{"blendfile": str(u.blendfile), "block": _block_name(u),
                           "stored_path": u.asset_path.decode_path(), "kind": u.kind} for u in p.usages],
    } for p in missing(usages)]


def _print_missing_text(usages: list[BlockUsage]) -> None:
    for p in missing(usages):
        click.echo(f"{_shown(p.path, p.shown)}  ({p.reason})")
        for u in p.usages:
            click.echo(f"    used by {_block_name(u)} in {_short(u.blendfile)} "
                       f"as {u.asset_path.decode_path()!r} ({u.kind})")


def _dump_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=4, ensure_ascii=False)
    click.echo()


# --- the command -----------------------------------------------------------------------------


def _resolve_format(as_json: bool, fmt: str | None, sha256: bool, only_missing: bool) -> str:
    """The output format; contradictory options are a usage error rather than silently ignored."""
    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json means --format json; it cannot be combined with --format {fmt}")
    fmt = "json" if as_json else fmt or "text"
    if fmt == "dot" and only_missing:
        raise click.UsageError("--missing cannot be combined with --format dot (the graph marks missing "
                               "files in red)")
    if fmt == "dot" and sha256:
        raise click.UsageError("--sha256 cannot be combined with --format dot")
    if only_missing and sha256:
        raise click.UsageError("--sha256 cannot be combined with --missing (missing files have no hash)")
    return fmt


@click.command("list")
@click.argument("blendfile", type=click.Path(path_type=Path))
@click.option("-j", "--json", "as_json", is_flag=True,
              help="JSON in BAT 1.x's shape: each blend file mapped to its existing dependencies "
                   "(same as --format json).")
@click.option("-s", "--sha256", is_flag=True,
              help="Show the SHA-256 of each file after its path (in JSON: {blend: {file: sha256}}).")
@click.option("-t", "--timing", is_flag=True, help="Report on stderr how long listing (and hashing) took.")
@click.option("--missing", "only_missing", is_flag=True,
              help="List only missing files and the blocks referring to them.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="text (default), json (BAT 1.x's shape), json-full (every reference: kind, block, "
                   "field, stored path, whether it exists) or dot (a Graphviz graph).")
@click.pass_context
def list_cmd(ctx: click.Context, blendfile: Path, as_json: bool, sha256: bool, timing: bool,
             only_missing: bool, fmt: str | None) -> None:
    """List the files BLENDFILE depends on, grouped by the blend file that uses them.

    Exit status: 0 nothing is missing, 1 error, 2 bad usage, 3 some
    dependencies are missing (each is reported on stderr).
    """
    set_json(as_json or (fmt or "").startswith("json"))
    fmt = _resolve_format(as_json, fmt, sha256, only_missing)
    check_blendfile(blendfile)
    st = state(ctx)
    start = time.perf_counter()
    sha = Hasher() if sha256 else None
    activity = ActivityLog()
    usages: list[BlockUsage] = []
    stream_text = fmt == "text" and not only_missing
    reported: set[Path] = set()
    last_blend: Path | None = None
    log.info("listing the dependencies of %s", blendfile)
    for usage in trace(blendfile, strict_pointers=st.strict_pointers, callback=activity):
        usages.append(usage)
        if not stream_text:
            continue
        if usage.blendfile != last_blend:
            last_blend = usage.blendfile
            head = _short(usage.blendfile)
            click.echo(f"{head} {sha.text(usage.blendfile)}" if sha is not None else head)
        for f in usage.files:
            if f in reported:
                continue
            reported.add(f)
            click.echo(f"    {_short(f)} {sha.text(f)}" if sha is not None else f"    {_short(f)}")
    if fmt == "dot":
        click.echo(render_dot(usages))
    elif fmt == "json-full":
        _dump_json(full_json(Path(os.path.abspath(blendfile)), usages, sha, only_missing))
    elif only_missing:
        if fmt == "json":
            _dump_json(_missing_json(usages))
        else:
            _print_missing_text(usages)
    elif fmt == "json":
        _dump_json(bat_json(usages, sha))
    found = missing(usages)
    if timing:
        total = time.perf_counter() - start
        hashing = f" ({sha.seconds:.3f} s of it on SHA-256 sums)" if sha is not None else ""
        click.echo(f"bat: listed {len(usages)} references in {total:.3f} s{hashing}", err=True)
    for path, reason in skipped(usages):
        click.echo(f"left out: {_short(path)} ({reason})", err=True)
    if found:
        if not only_missing:
            for p in found:
                why = "" if p.reason == "missing" else f" ({p.reason})"
                click.echo(f"missing: {_shown(p.path, p.shown)}{why} (used by {_users(p.usages)})", err=True)
        click.echo(f"bat: {len(found)} missing file(s)", err=True)
        sys.exit(EXIT_MISSING)
