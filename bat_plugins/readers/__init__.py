"""Built-in block readers and expanders for every datablock kind bat knows.

Each module exposes ``READERS`` (and optionally ``EXPANDERS``): dictionaries from
a block code (bytes) or DNA struct name (str) to a function.  This plugin
registers them all through the block-reader and expander hooks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from bat_core import hookimpl

#: The reader modules, imported when the hooks are called (not when bat starts: `bat --help`
#: loads every plugin module to find its commands).
_MODULE_NAMES = ["images", "libraries", "caches", "modifiers", "pointcache", "customdata", "media",
                 "sequencer", "nodes", "mtex"]


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in _MODULE_NAMES]

# Codes of every ID type Blender writes; the generic expander serves them all.
ID_CODES = [b"AC", b"AR", b"BR", b"CA", b"CF", b"CU", b"CV", b"GD", b"GP", b"GR", b"IM", b"IP",
            b"KE", b"LA", b"LI", b"LP", b"LS", b"LT", b"MA", b"MB", b"MC", b"ME", b"MS", b"NT",
            b"OB", b"PA", b"PC", b"PL", b"PT", b"SC", b"SK", b"SO", b"TE", b"TX", b"VF", b"VO",
            b"WO", b"WS"]


@hookimpl
def register_block_readers(register: Callable[[bytes | str, Callable[..., Any]], None]) -> None:
    for module in _modules():
        for key, reader in module.READERS.items():
            register(key, reader)


@hookimpl
def register_block_expanders(register: Callable[[bytes | str, Callable[..., Any]], None]) -> None:
    from . import expand

    for code in ID_CODES:
        register(code, expand.expand_id)
    for module in _modules():
        for key, expander in getattr(module, "EXPANDERS", {}).items():
            register(key, expander)
