"""What a pack did, file by file: returned by :func:`bat_core.pack.pack` and shown by ``bat pack``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Outcomes of a file.  In a no-op pack the planned verbs ("copy", "rewrite") are used instead.
COPIED, REWRITTEN, SKIPPED, EXCLUDED, NOT_TRANSFERRED = "copied", "rewritten", "skipped", "excluded", "not-transferred"
PLANNED_COPY, PLANNED_REWRITE = "copy", "rewrite"


@dataclass
class PackedFile:
    source: Path
    #: The packed path as shown to the user (``/tmp/out/tex.png``); None for excluded files.
    destination: str | None
    #: The packed path relative to the target root; None for excluded files.
    relpath: str | None
    #: copied, rewritten (a blend file with changed paths or compression), skipped (the
    #: target already had it), excluded, not-transferred (pack aborted); copy/rewrite in a no-op pack.
    action: str
    size: int
    reason: str = ""
    #: A file bat wrote into the pack itself (``pack-info.txt``): not a dependency, and
    #: ``source`` names no file on disk (only its name in the pack).
    own: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": str(self.source), "destination": self.destination,
                               "relpath": self.relpath, "action": self.action, "size": self.size}
        if self.reason:
            out["reason"] = self.reason
        if self.own:
            out["own"] = True
        return out


@dataclass
class Reference:
    """Where a missing path is used."""

    blendfile: Path
    block: str
    stored_path: str
    kind: str


@dataclass
class Missing:
    path: Path
    referenced_by: list[Reference] = field(default_factory=list)
    #: Why it cannot be packed: ``missing``, ``not a regular file (a FIFO)``, ``foreign path (...)``...
    reason: str = "missing"
    #: The path as shown (as stored, for a path of another operating system).
    shown: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.shown or str(self.path), "reason": self.reason, "referenced_by": [
            {"blendfile": str(r.blendfile), "block": r.block, "stored_path": r.stored_path, "kind": r.kind}
            for r in self.referenced_by]}


@dataclass
class PackResult:
    blendfile: Path
    target: str
    #: The packed main blend file as shown to the user.
    output: str
    files: list[PackedFile] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    noop: bool = False
    aborted: bool = False
    abort_reason: str = ""
    #: Set when the pack stopped on an error (the message of the PackError raised).
    error: str = ""
    seconds: float = 0.0
    #: What the target says about the pack (a Shaman checkout path...): ``Transfer.report()``.
    target_info: dict[str, Any] = field(default_factory=dict)
    #: Content-addressed targets: files read to compute checksums, their bytes, cache hits.
    checksums: dict[str, int] = field(default_factory=dict)

    def count(self, action: str) -> int:
        return sum(1 for f in self.files if f.action == action)

    @property
    def transferred(self) -> list[PackedFile]:
        """Files copied or rewritten into the target; in a no-op pack, those that would be."""
        done = (PLANNED_COPY, PLANNED_REWRITE) if self.noop else (COPIED, REWRITTEN)
        return [f for f in self.files if f.action in done]

    @property
    def bytes_transferred(self) -> int:
        return sum(f.size for f in self.transferred)

    @property
    def complete(self) -> bool:
        return not (self.aborted or self.error or self.noop)

    def summary(self) -> dict[str, Any]:
        return {
            "files": len(self.transferred),
            "bytes": self.bytes_transferred,
            "copied": self.count(COPIED),
            "rewritten": self.count(REWRITTEN),
            "skipped": self.count(SKIPPED),
            "excluded": self.count(EXCLUDED),
            "not_transferred": self.count(NOT_TRANSFERRED),
            "missing": len(self.missing),
            "seconds": round(self.seconds, 3),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready report (``bat pack --json``)."""
        return {
            "blendfile": str(self.blendfile),
            "target": self.target,
            "output": self.output,
            "noop": self.noop,
            "aborted": self.aborted,
            "abort_reason": self.abort_reason,
            "error": self.error,
            "summary": self.summary(),
            "target_info": self.target_info,
            "checksums": self.checksums,
            "files": [f.to_dict() for f in self.files],
            "missing": [m.to_dict() for m in self.missing],
        }
