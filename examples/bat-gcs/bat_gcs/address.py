"""Target strings: ``gs://bucket/path`` into a bucket and an object-name prefix.

The rules are GCS's own, checked before any request so that a typo is one
clear line, not an HTTP error: bucket names are lower case letters, digits,
``-``, ``_`` and ``.``; object names are UTF-8, at most 1024 bytes, without
carriage returns or line feeds.  The path is taken literally (no
percent-decoding); repeated slashes are dropped and ``.``/``..`` refused, so
the pack lands exactly where the string says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bat_core.targets import PackError

#: The URL scheme bat-gcs serves.
URL_SCHEME = "gs"
#: GCS limit on an object name, in UTF-8 bytes.
MAX_OBJECT_NAME = 1024

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")


@dataclass(frozen=True)
class GcsAddress:
    """Where a pack goes: a bucket, and the prefix its objects are named under ("" for the top)."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}" if self.prefix else f"gs://{self.bucket}"

    def object_name(self, relative: str) -> str:
        """The object name of a packed file, given its path relative to the pack root."""
        return f"{self.prefix}/{relative}" if self.prefix else relative


def check_bucket(name: str, target: str) -> None:
    """Refuse a bucket name GCS would refuse (``PackError`` naming the target)."""
    parts = name.split(".")
    ok = (
        3 <= len(name) <= 222
        and _BUCKET.fullmatch(name) is not None
        and all(0 < len(p) <= 63 for p in parts)
        and (len(parts) > 1 or len(name) <= 63)
        and not _IPV4.fullmatch(name)
        and not name.startswith("goog")
    )
    if not ok:
        raise PackError(f"{target}: {name!r} is not a valid bucket name (3-63 characters: lower case letters, "
                        f"digits, '-', '_' and '.', starting and ending with a letter or digit)")


def check_object_name(name: str, target: str) -> None:
    """Refuse an object name GCS cannot store."""
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise PackError(f"{target}: {name!r} is not valid UTF-8; GCS object names must be") from None
    if len(encoded) > MAX_OBJECT_NAME:
        raise PackError(f"{target}: object name longer than {MAX_OBJECT_NAME} bytes: {name[:80]}...")
    if any(c in name for c in "\r\n"):
        raise PackError(f"{target}: object names cannot contain line breaks: {name!r}")


def parse(target: str) -> GcsAddress:
    """``gs://bucket/path`` (or, with ``--target-scheme gs``, ``bucket/path``) as an address."""
    if target.startswith(f"{URL_SCHEME}://"):
        rest = target[len(URL_SCHEME) + 3:]
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.\-]+:", target):
        raise PackError(f"{target}: not a Google Cloud Storage URL; write gs://bucket/path")
    else:
        rest = target
    bucket, _, path = rest.partition("/")
    if not bucket:
        raise PackError(f"{target}: no bucket given; write gs://bucket/path")
    check_bucket(bucket, target)
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise PackError(f"{target}: '.' and '..' are not allowed in the path")
    prefix = "/".join(parts)
    if prefix:
        check_object_name(prefix, target)
    return GcsAddress(bucket, prefix)
