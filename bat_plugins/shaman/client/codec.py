"""What v2 and v3 have in common: a file list, an upload answer, a checkout request.

A codec knows only how these look on the wire (bytes, status codes,
headers); it makes no request itself.  :mod:`.transfer` does the HTTP, over
the transfer engine, for both.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    """One file of a checkout: its content (SHA-256, size) and its path inside the checkout."""

    sha: str
    size: int
    path: str


@dataclass(frozen=True)
class WireRequest:
    """A request to make: method, path relative to the server's base URL, body, headers."""

    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class Reply(enum.Enum):
    """What an upload's answer means."""

    STORED = "stored"  # this upload stored it
    ALREADY_STORED = "already-stored"  # the server had it
    DEFER = "defer"  # someone else is uploading it: come back later
    RETRY = "retry"  # a transient failure
    REFUSED = "refused"  # a permanent failure: the pack stops


class WireError(Exception):
    """The server's answer cannot be used; the message says why, in one line."""


def first_line(text: str, limit: int = 200) -> str:
    """A server's message as one short line, without the control characters (terminal escapes) it may hold."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = "".join(c if c.isprintable() else "?" for c in line[: limit + 1])
    return line if len(line) <= limit else line[: limit - 3] + "..."


#: Longest checkout location bat accepts from a server.
MAX_LOCATION = 4096


def location_problem(location: str) -> str | None:
    """Why a checkout location a server answered cannot be one (relative to its checkouts directory)."""
    if len(location) > MAX_LOCATION:
        return f"longer than {MAX_LOCATION} characters"
    if not location.isprintable():
        return "it holds control characters"
    if location.startswith("/") or "\\" in location or (len(location) > 1 and location[1] == ":"):
        return "not a relative path"
    if any(part in ("", ".", "..") for part in location.split("/")):
        return "not a plain relative path (empty, . or .. components)"
    return None


def checked_location(location: str, checkout: str) -> str:
    """``location`` when it can be a checkout's place; :class:`WireError` otherwise."""
    problem = location_problem(location)
    if problem:
        raise WireError(f"checkout {checkout!r}: the server answered a checkout location that cannot be one "
                        f"({problem}): {location[:100]!r}")
    return location


class Codec(ABC):
    """One API's wire format."""

    #: "v2" or "v3"
    api: str

    @abstractmethod
    def error_text(self, body: bytes, entries: Sequence[Entry] = ()) -> str:
        """The message in an error answer, as one line (naming the entry a definition error is about)."""

    @abstractmethod
    def requirements(self, entries: Sequence[Entry]) -> WireRequest:
        """The request asking which of ``entries`` the server lacks."""

    @abstractmethod
    def needed(self, body: bytes, asked: Mapping[str, Entry]) -> list[str]:
        """From a 2xx answer to :meth:`requirements`: the paths to upload, unknown ones first,
        then those someone else is uploading.

        Raises :class:`WireError` for an answer that names a path not asked
        about, an unknown state, or cannot be read.
        """

    @abstractmethod
    def upload(self, entry: Entry, can_defer: bool) -> tuple[str, dict[str, str]]:
        """The path to POST the file's bytes to, and the headers to send."""

    @abstractmethod
    def upload_reply(self, status: int, headers: Mapping[str, str], body: bytes) -> tuple[Reply, str]:
        """What the answer to an upload means, and the server's message when it failed."""

    @abstractmethod
    def create(self, entries: Sequence[Entry], checkout: str) -> WireRequest:
        """The request creating the checkout."""

    @abstractmethod
    def created(self, status: int, body: bytes, checkout: str) -> str:
        """The checkout's location (relative to the server's checkout root); :class:`WireError` if refused."""


def status_reply(status: int) -> Reply:
    """What an upload status that is not one of the API's own answers means."""
    if status in (408, 429) or (status >= 500 and status not in (501, 505, 507)):
        return Reply.RETRY
    return Reply.REFUSED
