"""The S3 target: pack into S3-compatible object storage (AWS S3, MinIO, Ceph, SeaweedFS...).

The scheme is registered whether or not boto3 is installed, so that an
``s3:`` target without it gets a line saying what to install rather than
being taken for something else; boto3 is imported when a target is resolved.
See ``docs/s3.md``.
"""

from __future__ import annotations

from collections.abc import Callable

from bat_core import hookimpl
from bat_core.targets import PackError, Target, TargetScheme

from .address import parse_target


def resolve_s3(target: str) -> Target:
    """The target for an ``s3:``, ``s3+http:`` or ``s3+https:`` string; makes no request."""
    location = parse_target(target)
    try:
        from .transfer import S3Transfer
    except ImportError as exc:
        raise PackError(f"S3 targets need boto3, which is not installed ({exc.name}): "
                        "pip install 'bat[s3]'") from None
    where = location.endpoint_url or "the AWS endpoint (or AWS_ENDPOINT_URL)"
    return Target(root=location.shown, transfer=S3Transfer(location),
                  description=f"S3 bucket {location.bucket} at {where}")


@hookimpl
def register_target_schemes(register: Callable[[TargetScheme], None]) -> None:
    register(TargetScheme(
        name="s3",
        help="S3-compatible object storage: s3://bucket/path, s3:/ENDPOINT/bucket/path, "
             "s3+http://ENDPOINT/bucket/path",
        url_schemes=("s3", "s3+http", "s3+https"),
        resolve=resolve_s3,
    ))
