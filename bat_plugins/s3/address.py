"""Target strings to S3 locations: which server, which bucket, which key prefix.

Three forms (and a bare ``bucket/path`` with ``--target-scheme s3``)::

    s3:/ENDPOINT/bucket/path        BAT 1.x: https://ENDPOINT, credentials of the [ENDPOINT] profile
    s3+http://ENDPOINT/bucket/path  the same over plain HTTP (s3+https:// is the explicit HTTPS spelling)
    s3://bucket/path                the AWS CLI's form: endpoint and credentials from boto3's chain

Parsing is pure: no file is read and no request made, so a bad string is
refused before anything else happens.  The path is taken literally (no
percent-decoding); empty segments are dropped, ``.`` and ``..`` refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bat_core.targets import PackError

#: S3-compatible servers differ on what they accept; this refuses what none does.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENDPOINT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$")
#: Longest key S3 accepts, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class S3Location:
    """Where a pack goes in S3-compatible storage."""

    bucket: str
    #: Key prefix of the pack: "" (the bucket's root) or ``"a/b/"`` (ends with a slash).
    prefix: str
    #: ``http(s)://ENDPOINT`` for the endpoint forms; None: boto3 finds it (``AWS_ENDPOINT_URL``...).
    endpoint_url: str | None
    #: The ENDPOINT of the endpoint forms: the name of the profile holding its credentials.
    endpoint_profile: str | None
    #: The root as shown to the user (``s3://bucket/job1``).
    shown: str

    def key(self, relpath: str) -> str:
        return self.prefix + relpath


def _split_path(path: str, target: str) -> tuple[str, str]:
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise PackError(f"S3 target {target!r} names no bucket")
    bucket, rest = parts[0], parts[1:]
    if not _BUCKET.match(bucket) or len(bucket) > 255:
        raise PackError(f"S3 target {target!r}: {bucket!r} is not a valid bucket name")
    if any(p in (".", "..") for p in rest):
        raise PackError(f"S3 target {target!r}: '.' and '..' are not allowed in the key prefix")
    if any(ord(c) < 32 for p in rest for c in p):
        raise PackError(f"S3 target {target!r}: control characters are not allowed in the key prefix")
    prefix = "".join(p + "/" for p in rest)
    try:
        size = len(prefix.encode("utf-8"))
    except UnicodeEncodeError:
        raise PackError(f"S3 target {target!r}: the key prefix is not valid UTF-8") from None
    if size > MAX_KEY_BYTES // 2:
        raise PackError(f"S3 target {target!r}: the key prefix is too long")
    return bucket, prefix


def _endpoint(netloc: str, target: str) -> str:
    if "@" in netloc:
        # Never echo the string: the part before '@' is a secret.
        raise PackError("S3 target: credentials do not belong in the target string; put them in the "
                        "[ENDPOINT] profile of the AWS credentials file or in AWS_ACCESS_KEY_ID / "
                        "AWS_SECRET_ACCESS_KEY")
    if not _ENDPOINT.match(netloc):
        raise PackError(f"S3 target {target!r}: {netloc!r} is not a host name or host:port")
    return netloc


def parse_target(target: str) -> S3Location:
    """The location a target string names; :class:`PackError` with one line for a bad string."""
    if "\0" in target:
        raise PackError("S3 target: NUL in the target string")
    if "@" in target.partition(":")[2].lstrip("/").partition("/")[0] or "@" in target.partition("/")[0]:
        _endpoint("@", target)  # refuses without echoing the target: the part before '@' is a secret
    scheme, sep, rest = target.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("s3", "s3+http", "s3+https"):
        # --target-scheme s3 with a bare "bucket/path": the AWS CLI's form.
        scheme, rest = "s3", "//" + target
    if scheme == "s3" and rest.startswith("//"):
        bucket, prefix = _split_path(rest[2:], target)
        shown = f"s3://{bucket}/{prefix}".rstrip("/")
        return S3Location(bucket, prefix, None, None, shown)
    if scheme == "s3" and not rest.startswith("/"):
        raise PackError(f"S3 target {target!r}: expected s3://bucket/path or s3:/ENDPOINT/bucket/path")
    protocol = "http" if scheme == "s3+http" else "https"
    rest = rest.lstrip("/") if scheme != "s3" else rest[1:]
    netloc, _, path = rest.partition("/")
    netloc = _endpoint(netloc, target)
    bucket, prefix = _split_path(path, target)
    shown = f"s3:/{netloc}/{bucket}/{prefix}" if scheme == "s3" else f"{scheme}://{netloc}/{bucket}/{prefix}"
    return S3Location(bucket, prefix, f"{protocol}://{netloc}", netloc, shown.rstrip("/"))
