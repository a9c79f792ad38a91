"""A studio pipeline that uses bat as a library, with its own block reader and progress callback.

No packaging, no entry point: the pipeline registers a plugin object from its
own code (``bat_core.plugins.register``) and passes a progress callback to
``pack()``.  The reader finds a path that a studio add-on keeps in a custom
ID property of objects (``ob["studio_sidecar"] = "//sidecars/moss.lookdev.json"``),
which Blender and bat's built-in readers know nothing about.

    python examples/studio_pipeline/pipeline.py list examples/studio_pipeline/project/shots/rock.blend
    python examples/studio_pipeline/pipeline.py pack examples/studio_pipeline/project/shots/rock.blend /tmp/rock-pack

``pack`` uses the project directory (``project/``, the parent of ``shots/``)
as the project root, so the sidecar in ``assets/`` keeps its relative path.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import bat_core
from bat_core import plugins
from bat_core.blendfile import Block
from bat_core.bpathlib import BlendPath
from bat_core.progress import PackCallback
from bat_core.trace import BlockUsage, TraceContext

PROPERTY = b"studio_sidecar"
IDP_STRING = 0  # IDProperty.type of a string property


def read_sidecar(block: Block, ctx: TraceContext) -> Iterator[BlockUsage]:
    """The sidecar path stored in an object's ``studio_sidecar`` custom property.

    Custom properties are a group ``IDProperty`` at ``id.properties``; a string
    property keeps its text in a block of its own at ``data.pointer``, which is
    the field given to the packer so that it can rewrite the path in the copy.
    """
    group = block.get_pointer((b"id", b"properties"), None)
    if group is None:
        return
    for prop in group.iter_listbase((b"data", b"group")):
        if prop.get(b"name") == PROPERTY and prop.get(b"type") == IDP_STRING:
            path = prop.get_string((b"data", b"pointer"))
            if path:
                yield BlockUsage(prop, (b"data", b"pointer"), BlendPath(path), "studio-sidecar")


class StudioSidecars:
    """The plugin: one hook, registering the reader for object blocks."""

    @bat_core.hookimpl
    def register_block_readers(self, register: Any) -> None:
        register(b"OB", read_sidecar)


class FarmProgress(PackCallback):
    """The progress callback: a few lines for the farm's job log."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.done = 0

    def pack_start(self, file_count: int, byte_count: int) -> None:
        print(f"farm: sending {file_count} files, {byte_count} bytes", file=self.out)

    def transfer_file_done(self, src: Path, dst: str) -> None:
        self.done += 1

    def pack_done(self, output_blendfile: str, missing_files: list[Path]) -> None:
        print(f"farm: {output_blendfile} is ready ({self.done} files sent, {len(missing_files)} missing)",
              file=self.out)


def main(argv: list[str]) -> int:
    plugins.register(StudioSidecars(), name="studio-sidecars")  # for the whole process
    if len(argv) == 2 and argv[0] == "list":
        missing = 0
        for usage in bat_core.trace.trace(argv[1]):
            missing += not usage.exists
            state = "" if usage.exists else "  (missing)"
            print(f"{usage.kind:<16} {usage.block_name.decode()}  {usage.abspath}{state}")
        return 3 if missing else 0
    if len(argv) == 3 and argv[0] == "pack":
        blend = Path(argv[1])
        result = bat_core.pack.pack(blend, argv[2], project=blend.parent.parent, callback=FarmProgress())
        return 3 if result.missing else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
