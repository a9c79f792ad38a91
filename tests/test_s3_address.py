"""S3 target strings: the three forms, and the strings refused before any request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bat_core.targets import PackError
from bat_plugins.s3.address import parse_target


@pytest.mark.parametrize(("target", "bucket", "prefix", "endpoint", "profile", "shown"), [
    ("s3://bkt/jobs/job1", "bkt", "jobs/job1/", None, None, "s3://bkt/jobs/job1"),
    ("s3://bkt", "bkt", "", None, None, "s3://bkt"),
    ("s3://bkt/", "bkt", "", None, None, "s3://bkt"),
    ("s3:/storage.example.com/bkt/job", "bkt", "job/", "https://storage.example.com", "storage.example.com",
     "s3:/storage.example.com/bkt/job"),
    ("s3:/host:9000/bkt/a/b", "bkt", "a/b/", "https://host:9000", "host:9000", "s3:/host:9000/bkt/a/b"),
    ("s3+http://127.0.0.1:8333/bkt/x//y/", "bkt", "x/y/", "http://127.0.0.1:8333", "127.0.0.1:8333",
     "s3+http://127.0.0.1:8333/bkt/x/y"),
    ("s3+https://minio.local/bkt/shot 10/ü", "bkt", "shot 10/ü/", "https://minio.local", "minio.local",
     "s3+https://minio.local/bkt/shot 10/ü"),
    ("s3+http://[::1]:9000/bkt", "bkt", "", "http://[::1]:9000", "[::1]:9000", "s3+http://[::1]:9000/bkt"),
    # --target-scheme s3 with no scheme in the string: the AWS CLI's form.
    ("bkt/job", "bkt", "job/", None, None, "s3://bkt/job"),
])
def test_forms(target: str, bucket: str, prefix: str, endpoint: str | None, profile: str | None,
               shown: str) -> None:
    loc = parse_target(target)
    assert (loc.bucket, loc.prefix, loc.endpoint_url, loc.endpoint_profile, loc.shown) == (
        bucket, prefix, endpoint, profile, shown)
    assert loc.key("textures/a.png") == prefix + "textures/a.png"


@pytest.mark.parametrize(("target", "says"), [
    ("s3://", "names no bucket"),
    ("s3:/host", "names no bucket"),
    ("s3://bkt/../x", "'..' are not allowed"),
    ("s3://bkt/a/./b", "'..' are not allowed"),
    ("s3:bkt", "expected s3://bucket/path"),
    ("s3+http://ho st/bkt", "not a host name"),
    ("s3://b*d/x", "not a valid bucket name"),
    ("s3://bkt/a\tb", "control characters"),
    ("s3://bkt/" + "x" * 600, "too long"),
])
def test_refused(target: str, says: str) -> None:
    with pytest.raises(PackError, match=says):
        parse_target(target)


@pytest.mark.parametrize("target", [
    "s3+http://AKID:s3cr3tpass@127.0.0.1:9000/bkt/x",
    "s3:/AKID:s3cr3tpass@host/bkt/x",
    "s3://AKID:s3cr3tpass@bkt/x",
    "AKID:s3cr3tpass@bkt/x",
])
def test_credentials_in_the_string_are_refused_without_echo(target: str) -> None:
    with pytest.raises(PackError) as err:
        parse_target(target)
    assert "s3cr3tpass" not in str(err.value) and "AKID" not in str(err.value)
    assert "credentials do not belong in the target" in str(err.value)


def test_without_boto3_a_line_says_what_to_install(tmp_path: Path) -> None:
    """The scheme is there without the s3 extra; resolving says to install it."""
    code = ("import sys; sys.modules['boto3'] = None\n"
            "from bat_plugins.s3 import resolve_s3\n"
            "from bat_core.targets import PackError\n"
            "try:\n    resolve_s3('s3://bkt/job')\n"
            "except PackError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "S3 targets need boto3, which is not installed (boto3): pip install 'bat[s3]'"
