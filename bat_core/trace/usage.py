"""BlockUsage: one reference from a block to a file outside the blend file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..blendfile import StructView
from ..blendfile.dna import FieldPath
from ..bpathlib import BlendPath


@dataclass(eq=False)
class BlockUsage:
    """A path stored in a block, and what it stands for on disk.

    Readers fill in the first group of fields; the tracer resolves the rest.
    ``field`` is where the path is stored in ``block`` so a packer can rewrite it;
    it is None when the path is implied rather than stored (point caches, whose
    directory is named after the blend file).  For paths stored split over a
    directory and a file name (sequencer strips), ``field`` holds the directory
    and ``dir_only`` is set.  ``field`` may also be a ``char *`` pointer (texts,
    bake directories): ``block.set(field, ...)`` rewrites such strings in place.
    """

    block: StructView
    field: FieldPath | None
    asset_path: BlendPath
    kind: str
    block_name: bytes = b""
    #: An image/cache sequence, UDIM tiles, or a directory: stands for several files.
    is_sequence: bool = False
    #: The path names a directory whose files are all dependencies (bake/cache dirs).
    is_directory: bool = False
    #: Glob (relative to the resolved path's directory) of the files a sequence spans,
    #: when the reader knows better than the default frame-number/UDIM rules.
    pattern: str | None = None
    #: Only the directory part of the path is stored in ``field`` (sequencer strips).
    dir_only: bool = False

    # Filled in by the tracer.
    blendfile: Path = dataclasses.field(default=Path())
    abspath: Path = dataclasses.field(default=Path())
    files: list[Path] = dataclasses.field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.files)

    def __repr__(self) -> str:
        name = self.block_name.decode("utf-8", "replace")
        return f"<BlockUsage {self.kind} {name} {self.asset_path!r} -> {self.abspath}>"
