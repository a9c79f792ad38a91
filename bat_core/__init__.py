"""bat: find every file a Blender .blend file depends on, and pack them.

The library API, available after ``import bat_core``:

- ``bat_core.trace.trace(blendfile, callback=..., plugins=...)`` streams the
  dependencies of a blend file;
- ``bat_core.pack.pack(blendfile, target, project=..., callback=..., plugins=...)``
  packs it and returns a :class:`PackResult`; a :class:`Packer` does the same in
  two steps and can be aborted from another thread.

(The functions stay inside their subpackages: a top-level function named
``pack`` or ``trace`` would hide the subpackage of the same name.)

The names below are imported when first used, not with the package: ``bat
version`` and ``bat --help`` start without loading the tracer or the packer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from . import pack, trace
    from .hookspecs import hookimpl
    from .pack import Packer, PackError, PackResult, Target, Transfer
    from .progress import PackCallback, TraceCallback
    from .trace import BlendFileCache, BlockUsage

#: Public name -> (module, attribute); attribute None for a subpackage.
_LAZY: dict[str, tuple[str, str | None]] = {
    "pack": (".pack", None),
    "trace": (".trace", None),
    "hookimpl": (".hookspecs", "hookimpl"),
    "Packer": (".pack", "Packer"),
    "PackError": (".errors", "PackError"),
    "PackResult": (".pack", "PackResult"),
    "Target": (".targets", "Target"),
    "Transfer": (".targets", "Transfer"),
    "PackCallback": (".progress", "PackCallback"),
    "TraceCallback": (".progress", "TraceCallback"),
    "BlendFileCache": (".trace", "BlendFileCache"),
    "BlockUsage": (".trace", "BlockUsage"),
}

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


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'bat_core' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
