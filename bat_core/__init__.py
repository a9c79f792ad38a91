"""bat: find every file a Blender .blend file depends on, and pack them.

The library API, available after ``import bat_core``:

- ``bat_core.trace.trace(blendfile, callback=..., plugins=...)`` streams the
  dependencies of a blend file;
- ``bat_core.pack.pack(blendfile, target, project=..., callback=..., plugins=...)``
  packs it and returns a :class:`PackResult`; a :class:`Packer` does the same in
  two steps and can be aborted from another thread.

(The functions stay inside their subpackages: a top-level function named
``pack`` or ``trace`` would hide the subpackage of the same name.)
"""

__version__ = "0.1.0"

from . import pack, trace
from .hookspecs import hookimpl
from .pack import Packer, PackError, PackResult, Target, Transfer
from .progress import PackCallback, TraceCallback
from .trace import BlendFileCache, BlockUsage

__all__ = [
    "BlendFileCache",
    "BlockUsage",
    "PackCallback",
    "PackError",
    "PackResult",
    "Packer",
    "Target",
    "TraceCallback",
    "Transfer",
    "__version__",
    "hookimpl",
    "pack",
    "trace",
]
