"""The v3 wire format (Flamenco 3): JSON file lists under ``/api/v3/shaman/``.

``shaman-v3-protocol.md`` sections 3-4: requirements and checkouts are JSON
``{"files": [{"sha", "size", "path"}]}``; an upload answers 200/204 (stored),
208 (already stored), 425 (someone else is uploading: defer) or 417 (wrong
size or checksum); a checkout is asked for by path and answered with the path
used, which may carry a ``-xxxx`` suffix.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .codec import Codec, Entry, Reply, WireError, WireRequest, checked_location, first_line, status_reply

PREFIX = "api/v3/"
JSON = {"Content-Type": "application/json"}


def original_filename(path: str) -> str:
    """The ``X-Shaman-Original-Filename`` value: plain ASCII as it is, anything else one RFC 2047
    encoded-word (UTF-8, base64), never folded however long the name."""
    if all(" " <= c <= "~" for c in path) and "=?" not in path:
        return path
    return "=?utf-8?b?" + base64.b64encode(path.encode("utf-8")).decode("ascii") + "?="


def _files(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    return [{"sha": e.sha, "size": e.size, "path": e.path} for e in entries]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting bombs
        return None


class V3Codec(Codec):
    api = "v3"

    def error_text(self, body: bytes, entries: Sequence[Entry] = ()) -> str:
        doc = _json(body)
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            return first_line(doc["message"])
        return first_line(body.decode("utf-8", "replace"))

    def requirements(self, entries: Sequence[Entry]) -> WireRequest:
        body = json.dumps({"files": _files(entries)}, ensure_ascii=False).encode("utf-8")
        return WireRequest("POST", PREFIX + "shaman/checkout/requirements", body, JSON)

    def needed(self, body: bytes, asked: Mapping[str, Entry]) -> list[str]:
        doc = _json(body)
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, list):
            raise WireError("the requirements answer is not a JSON object with a files list")
        unknown: list[str] = []
        uploading: list[str] = []
        for spec in files:
            if not isinstance(spec, dict):
                raise WireError(f"unexpected entry in the requirements answer: {spec!r}")
            path, status = spec.get("path"), spec.get("status")
            entry = asked.get(path) if isinstance(path, str) else None
            if entry is None or not isinstance(path, str):
                raise WireError(f"the server asked for a file that is not in the checkout: {path!r}")
            if spec.get("sha") != entry.sha or spec.get("size") != entry.size:
                raise WireError(f"the server's answer for {path!r} names other content than was asked about")
            if status == "unknown":
                unknown.append(path)
            elif status == "uploading":
                uploading.append(path)
            elif status != "stored":
                raise WireError(f"unexpected status {status!r} for {path!r} in the requirements answer")
        return list(dict.fromkeys([*unknown, *uploading]))

    def upload(self, entry: Entry, can_defer: bool) -> tuple[str, dict[str, str]]:
        headers = {"Content-Type": "application/octet-stream",
                   "X-Shaman-Original-Filename": original_filename(entry.path)}
        if can_defer:
            headers["X-Shaman-Can-Defer-Upload"] = "true"
        return f"{PREFIX}shaman/files/{entry.sha}/{entry.size}", headers

    def upload_reply(self, status: int, headers: Mapping[str, str], body: bytes) -> tuple[Reply, str]:
        if status == 208:
            return Reply.ALREADY_STORED, ""
        if status == 425:
            return Reply.DEFER, ""
        if 200 <= status < 300:
            return Reply.STORED, ""
        text = f"{status} {self.error_text(body)}".strip()
        if status == 417:
            return Reply.REFUSED, text
        return status_reply(status), text

    def create(self, entries: Sequence[Entry], checkout: str) -> WireRequest:
        body = json.dumps({"files": _files(entries), "checkoutPath": checkout}, ensure_ascii=False)
        return WireRequest("POST", PREFIX + "shaman/checkout/create", body.encode("utf-8"), JSON)

    def created(self, status: int, body: bytes, checkout: str) -> str:
        message = self.error_text(body)
        if 200 <= status < 300:
            doc = _json(body)
            used = doc.get("checkoutPath") if isinstance(doc, dict) else None
            if not isinstance(used, str) or not used:
                raise WireError(f"checkout {checkout!r}: the server did not say which path it used")
            return checked_location(used, checkout)
        # Flamenco's own server answers 500 where its API says 424 (shaman-v3-protocol.md 4.4).
        if status == 424 or "unknown files" in message:
            raise WireError(f"checkout {checkout!r} not created: the server lacks files it said it had "
                            f"({message}); run the pack again to upload them")
        if status == 409 or "already exists" in message:
            raise WireError(f"checkout path {checkout!r} is taken on the server ({message}); choose another")
        raise WireError(f"checkout {checkout!r}: {status} {message}".rstrip())
