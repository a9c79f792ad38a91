"""What the block readers found in each ID block, kept in the blend file's memo.

With the block index and the libraries' walks remembered (``blendfile/memo.py``),
running the readers over every ID block is most of what is left of a trace of
an unchanged scene.  Their answer (the stored paths and where they are) depends
on the file's bytes, the readers' code, and the path the file was opened by
(point caches are named after it); nothing on disk.  So it is remembered too,
per ID block, and only the resolving of each path on disk is done every time.

Only bat's own readers are remembered: when a plugin registers a reader of
its own (which may look at anything), every reader runs as before.
"""

from __future__ import annotations

import hashlib
import json
import sys
import weakref
from collections.abc import Iterable
from typing import Any

from ..blendfile import BlendFile, Block, StructView
from ..blendfile.memo import code_version
from ..bpathlib import BlendPath
from ..plugins import Registry
from .usage import BlockUsage

SECTION = "readers"
#: Modules whose readers are remembered (bat's own).
_OWN_PREFIX = "bat_plugins.readers"
_FLAGS = ("is_sequence", "is_directory", "dir_only", "optional")

Record = list[Any]


def _enc(value: Any) -> Any:
    if isinstance(value, bytes):
        return ["b", value.decode("latin-1")]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, int):
        return ["i", value]
    return ["t", [_enc(v) for v in value]]


def _dec(value: Any) -> Any:
    kind, data = value
    if kind == "b":
        return data.encode("latin-1")
    if kind == "s":
        return str(data)
    if kind == "i":
        return int(data)
    if kind == "t":
        return tuple(_dec(v) for v in data)
    raise ValueError(f"unknown field part {kind!r}")


_versions: dict[int, tuple[Registry, str | None]] = {}


def _registry_version(registry: Registry) -> str | None:
    """A digest of which reader handles which code and struct, and of their code; None when a
    reader is not bat's own."""
    entry = _versions.get(id(registry))
    if entry is not None and entry[0] is registry:
        return entry[1]
    shape: list[str] = []
    files: set[str] = set()
    version: str | None = ""
    for kind, table in (("code", registry.readers_by_code), ("struct", registry.readers_by_struct)):
        for key in sorted(table):
            for handler in table[key]:
                module = getattr(handler, "__module__", "") or ""
                name = getattr(handler, "__qualname__", "")
                if not module.startswith(_OWN_PREFIX) or not name:
                    version = None
                    break
                shape.append(f"{kind}:{key!r}:{module}.{name}")
                source = getattr(sys.modules.get(module), "__file__", None)
                if source:
                    files.add(source)
    if version is not None:
        here = [__file__, __file__.replace("reader_memo", "usage"), __file__.replace("reader_memo", "tracer")]
        digest = hashlib.blake2b("\n".join(shape).encode(), digest_size=16).hexdigest()
        version = code_version(*sorted(files), *here) + digest
    if len(_versions) > 16:
        _versions.clear()
    _versions[id(registry)] = (registry, version)
    return version


class ReaderMemo:
    """The remembered reader answers of one open blend file: block header position -> records."""

    __slots__ = ("bf", "found", "new", "version")

    def __init__(self, bf: BlendFile, version: str) -> None:
        self.bf = bf
        self.version = version
        self.new = False
        self.found: dict[int, list[Record]] = {}
        data = bf.memo.get(SECTION, version) if bf.memo is not None else None
        if data:
            try:
                raw = json.loads(data)
                self.found = {int(k): v for k, v in raw.items()}
            except (ValueError, TypeError, AttributeError):
                self.found = {}

    def usages(self, block: Block) -> list[BlockUsage] | None:
        """The usages the readers found in ``block`` last time, made afresh; None when unknown."""
        if self.bf.modified:
            return None  # the bytes in memory are no longer those the answers are about
        records = self.found.get(block.offset)
        if records is None:
            return None
        try:
            return [self._usage(r) for r in records]
        except (ValueError, TypeError, IndexError, KeyError):
            del self.found[block.offset]
            return None

    def _usage(self, r: Record) -> BlockUsage:
        view_kind, offset, sdna, field, asset, kind, name, flags, pattern, subdirs = r
        bf = self.bf
        view: StructView
        if view_kind == "B":
            view = bf._block(int(offset) - bf._header_size)
        else:
            view = StructView(bf, bf.dna.structs[int(sdna)], int(offset))
        usage = BlockUsage(view, None if field is None else _dec(field), BlendPath(asset.encode("latin-1")),
                           str(kind), block_name=name.encode("latin-1"), pattern=pattern,
                           subdirs=None if subdirs is None else tuple(subdirs))
        for i, flag in enumerate(_FLAGS):
            if flags >> i & 1:
                setattr(usage, flag, True)
        return usage

    def remember(self, block: Block, usages: Iterable[BlockUsage]) -> None:
        if self.bf.modified:
            return
        records: list[Record] = []
        for u in usages:
            view = u.block
            if view.file is not self.bf:
                return  # a reader that reached into another file: not remembered
            is_block = isinstance(view, Block)
            flags = sum(1 << i for i, flag in enumerate(_FLAGS) if getattr(u, flag))
            records.append(["B" if is_block else "V", view.offset, -1 if is_block else view.dna_type.index,
                            None if u.field is None else _enc(u.field), bytes(u.asset_path).decode("latin-1"),
                            u.kind, u.block_name.decode("latin-1"), flags, u.pattern,
                            None if u.subdirs is None else list(u.subdirs)])
        self.found[block.offset] = records
        self.new = True

    def store(self) -> None:
        if self.new and self.bf.memo is not None:
            self.bf.memo.put(SECTION, self.version, json.dumps(self.found, separators=(",", ":")).encode())
            self.new = False


_memos: weakref.WeakKeyDictionary[BlendFile, ReaderMemo | None] = weakref.WeakKeyDictionary()


def reader_memo(bf: BlendFile, registry: Registry) -> ReaderMemo | None:
    """The reader memo of ``bf`` for these readers, or None when answers are not to be remembered."""
    if bf in _memos:
        return _memos[bf]
    memo: ReaderMemo | None = None
    if bf.memo is not None and not bf.modified:
        version = _registry_version(registry)
        if version is not None:
            memo = ReaderMemo(bf, f"{version}:{bf.path}")
            bf.on_close(memo.store)
    _memos[bf] = memo
    return memo
