"""An example plugin, one hook at a time: the scenes' render outputs, a farm log, a command.

The documentation includes this file piece by piece (the ``--8<--`` markers);
``tests/test_docs_examples.py`` registers it and checks that every piece does
what the documentation says.  Packaged, it would be a distribution
``bat-render-outputs`` with ``render_outputs = "bat_render_outputs"`` in its
``bat`` entry points; here it is registered from code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

import bat_core
from bat_core.blendfile import Block, open_blend
from bat_core.bpathlib import BlendPath
from bat_core.progress import PackCallback, TraceCallback
from bat_core.trace import BlockUsage, TraceContext


# --8<-- [start:reader]
def read_render_output(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    """A scene's render output file (``r.pic``), which bat's own readers leave alone.

    A directory (the path ends in ``/``) stands for files a render will make,
    not for a dependency: nothing to report.
    """
    path = block.get((b"r", b"pic"), b"")
    if path and not path.endswith(b"/"):
        yield BlockUsage(block, (b"r", b"pic"), BlendPath(path), "render-output")


@bat_core.hookimpl
def register_block_readers(register: Callable[[bytes | str, Callable[..., Any]], None]) -> None:
    register(b"SC", read_render_output)  # every Scene block
# --8<-- [end:reader]


# --8<-- [start:callback]
class FarmLog(PackCallback):
    """One line per file a pack puts in place, and one when the pack is done."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _write(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def transfer_file_done(self, src: Path, dst: str) -> None:
        self._write(f"packed {src} -> {dst}")

    def pack_done(self, output_blendfile: str, missing_files: list[Path]) -> None:
        self._write(f"done {output_blendfile} ({len(missing_files)} missing)")


@bat_core.hookimpl
def register_callbacks(register: Callable[[TraceCallback], None]) -> None:
    log = os.environ.get("FARM_LOG")  # read once, when bat builds its registry
    if log:
        register(FarmLog(Path(log)))
# --8<-- [end:callback]


# --8<-- [start:command]
@bat_core.hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("render-outputs")
    @click.argument("blendfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def render_outputs(blendfile: Path) -> None:
        """Print where each scene of BLENDFILE renders to."""
        with open_blend(blendfile) as bf:
            for scene in bf.blocks_by_code(b"SC"):
                name = scene.id_name[2:].decode("utf-8", "replace")
                output = scene.get((b"r", b"pic"), b"").decode("utf-8", "replace")
                click.echo(f"{name}: {output}")
# --8<-- [end:command]
