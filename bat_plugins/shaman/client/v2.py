"""The v2 wire format (Flamenco Manager 2.x, BAT 1.x): text checkout definitions.

``shaman-protocol.md`` sections 4-5: a definition is ``<sha256> <size> <path>``
lines; the requirements answer is ``file-unknown <path>`` and
``already-uploading <path>`` lines; an upload answers 204 (stored), 208 with
``Location`` (already stored) or 208 without it (someone else is uploading:
defer); a checkout answers its location, ``<id[-2:]>/<id>``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence

from .codec import Codec, Entry, Reply, WireError, WireRequest, checked_location, first_line, status_reply

TEXT = {"Content-Type": "text/plain"}
_INVALID_LINE = re.compile(r"invalid line (\d+)")
#: Printable ASCII but ``%``: what a non-ASCII original filename keeps unencoded.
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def definition(entries: Sequence[Entry]) -> bytes:
    """The checkout definition: one ``<sha256> <size> <path>`` line per entry, UTF-8, LF-joined."""
    return "\n".join(f"{e.sha} {e.size} {e.path}" for e in entries).encode("utf-8")


def path_problem(path: str) -> str | None:
    """Why a definition line cannot carry this path (the server trims lines and splits at LF)."""
    if "\n" in path or "\r" in path:
        return "has a line break"
    if path != path.strip():
        return "starts or ends with white space"
    return None


def original_filename(path: str) -> str:
    """The ``X-Shaman-Original-Filename`` value: the path, percent-encoded when it is not plain ASCII.

    HTTP header values are Latin-1 on the wire; BAT 1.x fails on other names.
    The server only logs the header.
    """
    if all(" " <= c <= "~" for c in path):
        return path
    return urllib.parse.quote(path, safe=_SAFE)


class V2Codec(Codec):
    api = "v2"

    def error_text(self, body: bytes, entries: Sequence[Entry] = ()) -> str:
        text = first_line(body.decode("utf-8", "replace"))
        m = _INVALID_LINE.search(text)
        if m and 0 < int(m.group(1)) <= len(entries):
            text += f" ({entries[int(m.group(1)) - 1].path})"
        return text

    def requirements(self, entries: Sequence[Entry]) -> WireRequest:
        return WireRequest("POST", "checkout/requirements", definition(entries), TEXT)

    def needed(self, body: bytes, asked: Mapping[str, Entry]) -> list[str]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("the requirements answer is not UTF-8 text") from None
        unknown: list[str] = []
        uploading: list[str] = []
        for line in text.split("\n"):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            word, _, path = line.partition(" ")
            if word == "ERROR":
                raise WireError(f"the server answered: {first_line(path)}")
            if word not in ("file-unknown", "already-uploading"):
                raise WireError(f"unexpected answer to the requirements request: {first_line(line)!r}")
            if path not in asked:
                raise WireError(f"the server asked for a file that is not in the checkout: {path!r}")
            (unknown if word == "file-unknown" else uploading).append(path)
        return list(dict.fromkeys([*unknown, *uploading]))

    def upload(self, entry: Entry, can_defer: bool) -> tuple[str, dict[str, str]]:
        headers = {"X-Shaman-Original-Filename": original_filename(entry.path)}
        if can_defer:
            headers["X-Shaman-Can-Defer-Upload"] = "true"
        return f"files/{entry.sha}/{entry.size}", headers

    def upload_reply(self, status: int, headers: Mapping[str, str], body: bytes) -> tuple[Reply, str]:
        if status == 208:
            # "File already stored" comes with Location; "please defer" without.
            stored = any(k.lower() == "location" for k in headers) or b"already stored" in body
            return (Reply.ALREADY_STORED if stored else Reply.DEFER), ""
        if 200 <= status < 300:
            return Reply.STORED, ""
        text = f"{status} {self.error_text(body)}".strip()
        if status == 417:
            return Reply.REFUSED, text
        return status_reply(status), text

    def create(self, entries: Sequence[Entry], checkout: str) -> WireRequest:
        return WireRequest("POST", f"checkout/create/{urllib.parse.quote(checkout, safe='')}",
                           definition(entries), TEXT)

    def created(self, status: int, body: bytes, checkout: str) -> str:
        text = body.decode("utf-8", "replace")
        if 200 <= status < 300:
            location = text.strip()
            if not location:
                raise WireError(f"checkout {checkout!r}: the server did not say where it is")
            return checked_location(location, checkout)
        missing = [ln.partition(" ")[2].strip() for ln in text.splitlines() if ln.startswith("file-unknown ")]
        if missing:
            raise WireError(missing_files(checkout, missing))
        if status == 409:
            # bat shaman serve answers 200 when the checkout there is exactly this one (a re-run
            # after a lost answer); Flamenco 2 always says 409.
            raise WireError(f"checkout {checkout!r} already exists on the server with other files; choose "
                            f"another ID, or remove {checkout[-2:]}/{checkout} from the server's checkouts "
                            f"directory if an interrupted pack left it there")
        raise WireError(f"checkout {checkout!r}: {status} {first_line(text)}".rstrip())


def missing_files(checkout: str, paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return (f"checkout {checkout!r} not created: the server lacks {len(paths)} file(s) it said it had "
            f"({shown}); run the pack again to upload them")
