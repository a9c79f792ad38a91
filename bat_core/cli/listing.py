"""``bat list``: every file a blend file depends on, grouped by blend file."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from ..trace import BlockUsage, problems, trace

EXIT_MISSING = 3


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


def _short(path: Path) -> str:
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def _shown(path: Path, shown: str) -> str:
    """A resolved path relative to the working directory when inside it; a foreign one as stored."""
    return _short(path) if path.is_absolute() else shown


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


@click.command("list")
@click.argument("blendfile", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="JSON in BAT 1.x's shape: each blend file mapped to its dependencies.")
@click.option("--sha256", is_flag=True, help="Include the SHA-256 of each file.")
@click.option("--timing", is_flag=True, help="Report how long tracing (and hashing) took, on stderr.")
@click.option("--missing", "only_missing", is_flag=True,
              help="List only missing files and the blocks referring to them.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot"]), default="text",
              show_default=True, help="Output format (dot: a Graphviz graph).")
@click.pass_obj
def list_cmd(obj: Any, blendfile: Path, as_json: bool, sha256: bool, timing: bool,
             only_missing: bool, fmt: str) -> None:
    """List the files BLENDFILE depends on, grouped by the blend file that uses them.

    Exit status 3 means some dependencies are missing.
    """
    if as_json:
        fmt = "json"
    if not blendfile.exists():
        raise click.ClickException(f"{blendfile}: no such file")
    start = time.perf_counter()
    hash_time = 0.0
    usages: list[BlockUsage] = []
    stream_text = fmt == "text" and not only_missing
    reported: set[Path] = set()
    reported_problems: set[tuple[Path, Path]] = set()
    last_blend: Path | None = None
    for usage in trace(blendfile, strict_pointers=obj.strict_pointers):
        usages.append(usage)
        if not stream_text:
            continue
        if usage.blendfile != last_blend:
            click.echo(_short(usage.blendfile))
            last_blend = usage.blendfile
        for path, reason in usage.skipped:
            click.echo(f"    {_short(path)}  (left out: {reason})")
        if usage.problem:
            if (usage.blendfile, usage.abspath) not in reported_problems:
                reported_problems.add((usage.blendfile, usage.abspath))
                click.echo(f"    {_shown(usage.abspath, usage.shown_path)}  ({usage.problem})")
            continue
        for f in usage.files:
            if f in reported:
                continue
            reported.add(f)
            if sha256:
                t = time.perf_counter()
                digest = sha256_of(f)
                hash_time += time.perf_counter() - t
                click.echo(f"    {_short(f)}  {digest}")
            else:
                click.echo(f"    {_short(f)}")
    if fmt == "dot":
        click.echo(render_dot(usages))
    elif only_missing:
        _report_missing(usages, fmt == "json")
    elif fmt == "json":
        report: dict[str, Any] = defaultdict(dict if sha256 else set)
        for u in usages:
            key = str(u.blendfile)
            for f in u.files:
                if sha256:
                    t = time.perf_counter()
                    report[key][str(f)] = sha256_of(f)
                    hash_time += time.perf_counter() - t
                else:
                    report[key].add(str(f))
            if u.problem:
                if sha256:
                    report[key][u.shown_path] = None
                else:
                    report[key].add(u.shown_path)
        out = {k: (v if sha256 else sorted(v)) for k, v in report.items()}
        json.dump(out, sys.stdout, indent=4, ensure_ascii=False)
        click.echo()
    if timing:
        total = time.perf_counter() - start
        click.echo(f"traced {len(usages)} usages in {total:.3f} s"
                   + (f" ({hash_time:.3f} s hashing)" if sha256 else ""), err=True)
    missing = len(problems(usages))
    if missing:
        click.echo(f"bat: {missing} missing file(s)", err=True)
        sys.exit(EXIT_MISSING)


def _report_missing(usages: list[BlockUsage], as_json: bool) -> None:
    found = sorted(problems(usages), key=lambda p: p.shown)
    if as_json:
        json.dump([{
            "path": p.shown,
            "reason": p.reason,
            "referenced_by": [{"blendfile": str(u.blendfile), "block": u.block_name.decode("utf-8", "replace"),
                               "stored_path": u.asset_path.decode_path(), "kind": u.kind} for u in p.usages],
        } for p in found], sys.stdout, indent=4, ensure_ascii=False)
        click.echo()
        return
    for p in found:
        click.echo(f"{_shown(p.path, p.shown)}  ({p.reason})")
        for u in p.usages:
            click.echo(f"    used by {u.block_name.decode('utf-8', 'replace')} in {_short(u.blendfile)} "
                       f"as {u.asset_path.decode_path()!r} ({u.kind})")


def register(cli: click.Group) -> None:
    cli.add_command(list_cmd)
