"""``<prefix>/.bat-manifest.json``: the SHA-256 of every object bat put under a prefix.

A listing gives each object's size and ETag but not its metadata, where the
SHA-256 is.  The manifest remembers, per key, the SHA-256 together with the
size and ETag the object had when bat wrote or checked it.  When the listing
still shows that size and ETag, the object is the one the manifest describes
(an ETag changes whenever the content does), so its SHA-256 is known without
a HEAD request.  A key the manifest does not settle is checked with a HEAD;
a damaged or foreign manifest is ignored (it costs HEADs, never a wrong skip
of a key whose size or ETag moved).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NAME = ".bat-manifest.json"
FORMAT = "bat-s3-manifest"
VERSION = 1


@dataclass(frozen=True)
class Entry:
    sha256: str
    size: int
    etag: str


def parse(data: bytes) -> dict[str, Entry]:
    """Relative key -> entry; empty for anything that is not a manifest of this version."""
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError("not a bat manifest of version 1")
        out = {}
        for key, value in doc["objects"].items():
            entry = Entry(str(value["sha256"]), int(value["size"]), str(value["etag"]))
            if isinstance(key, str) and len(entry.sha256) == 64:
                out[key] = entry
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring the S3 manifest %s: %s", NAME, exc)
        return {}


def dump(entries: dict[str, Entry]) -> bytes:
    objects: dict[str, Any] = {
        key: {"sha256": e.sha256, "size": e.size, "etag": e.etag} for key, e in sorted(entries.items())
    }
    return json.dumps({"format": FORMAT, "version": VERSION, "objects": objects}, indent=0,
                      ensure_ascii=False).encode("utf-8")
