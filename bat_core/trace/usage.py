"""BlockUsage: one reference from a block to a file outside the blend file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..blendfile import StructView
from ..blendfile.dna import FieldPath
from ..bpathlib import BlendPath
from .files import FOREIGN


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
    #: Files Blender writes itself (disk point caches, Geometry Nodes bakes): no files
    #: means nothing was baked, not a missing file.  Blender does not report them either.
    optional: bool = False
    #: For a directory: only these sub-directories hold what is read (Mantaflow's
    #: ``config``, ``data``...); None walks the whole directory.
    subdirs: tuple[str, ...] | None = None

    # Filled in by the tracer.
    blendfile: Path = dataclasses.field(default=Path())
    #: The resolved path; for a foreign path (``C:\\x`` on Linux) the path as stored,
    #: which names nothing on this machine (``problem`` says so).
    abspath: Path = dataclasses.field(default=Path())
    files: list[Path] = dataclasses.field(default_factory=list)
    #: Why this reference cannot be satisfied ('' when it can): ``missing``,
    #: ``missing (file name too long)``, ``unreadable (permission denied)``,
    #: ``not a regular file (a FIFO)``, ``on a kernel file system``,
    #: ``foreign path (...)``, ``not a blend file (...)``.  A non-empty problem is
    #: what ``bat list`` and ``bat pack`` count as missing.
    problem: str = ""
    #: Entries of a directory or sequence that were left out, with the reason
    #: (FIFOs, sockets, dangling symbolic links inside a cache directory).
    skipped: list[tuple[Path, str]] = dataclasses.field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.files)

    @property
    def missing(self) -> bool:
        """True when Blender would not find what this reference names (see ``problem``)."""
        return bool(self.problem)

    @property
    def shown_path(self) -> str:
        """The path as shown in reports: resolved, or as stored when it is foreign."""
        return self.asset_path.decode_path() if self.problem.startswith(FOREIGN) else str(self.abspath)

    def __repr__(self) -> str:
        name = self.block_name.decode("utf-8", "replace")
        return f"<BlockUsage {self.kind} {name} {self.asset_path!r} -> {self.abspath}>"
