"""The boto3 client for a location: credentials, endpoint, retries, connection pool.

Credentials (never printed or logged):

* the endpoint forms (``s3:/ENDPOINT/...``, ``s3+http://ENDPOINT/...``) use the
  profile named ENDPOINT (``[ENDPOINT]`` in the AWS credentials file, or
  ``[profile ENDPOINT]`` in the config file), as BAT 1.x did; without such a
  profile, boto3's usual chain (environment, ``AWS_PROFILE``, ``[default]``...);
* ``s3://bucket/path`` uses boto3's usual chain only, endpoint included
  (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``, ``endpoint_url`` in the profile).

botocore logs request headers (the access key id among them) at DEBUG level,
so its loggers are kept at INFO or above even under ``bat -d``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from bat_core.targets import PackError

from .address import S3Location
from .answers import BoundedAnswers
from .errors import Describer
from .retries import AbortAwareRetries

#: Seconds to wait for a TCP (and TLS) connection, and for each read from the server.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
DEFAULT_REGION = "us-east-1"
_NOISY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")
#: Bodies smaller than this go without ``Expect: 100-continue`` (a round trip saved per file).
EXPECT_CONTINUE_FROM = 1024 * 1024

_loader_lock = threading.Lock()
_loader: Any = None


def _botocore_session() -> botocore.session.Session:
    """A fresh botocore session (fresh credentials and config) sharing one loader of service models.

    Reading and building S3's service model costs ~150 ms per session; a
    program that packs many times pays it once.
    """
    global _loader
    core = botocore.session.Session()
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
    # Timestamps (LastModified) stay strings: bat never reads them, and parsing them with
    # dateutil is three quarters of the cost of a listing.
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return core


def _no_expect_for_small_bodies(params: dict[str, Any], **kwargs: Any) -> None:
    """botocore asks every file body to wait for ``100 Continue``: worth it only for big bodies."""
    body = params.get("body")
    headers = params.get("headers", {})
    if "Expect" in headers and hasattr(body, "__len__") and len(body) < EXPECT_CONTINUE_FROM:
        del headers["Expect"]


def quiet_sdk_logging() -> None:
    """Keep the SDK's DEBUG output (request headers, signing details) out of any log."""
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


def _credentials_source(session: boto3.Session, method: str, profile: str | None) -> str:
    """Where the credentials came from, for error messages (never the credentials)."""
    core = session._session  # the botocore session boto3 wraps
    if method == "env":
        return "AWS_ACCESS_KEY_ID in the environment"
    if method == "shared-credentials-file":
        path = core.get_config_variable("credentials_file")
        return f"the [{profile or 'default'}] profile of {path}"
    if method == "config-file":
        path = core.get_config_variable("config_file")
        return f"the [profile {profile or 'default'}] section of {path}"
    return method


def _has_profile(core: botocore.session.Session, name: str) -> bool:
    try:
        return name in core.available_profiles
    except BotoCoreError:
        return False


@dataclass
class Connection:
    """A client for one location, and what error messages may say about it."""

    client: Any
    location: S3Location
    endpoint_url: str
    describer: Describer
    retries: AbortAwareRetries
    requests: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, event_name: str = "", **kwargs: Any) -> None:
        """``before-send`` handler: one HTTP attempt of an operation."""
        with self._lock:
            self.requests[event_name.rsplit(".", 1)[-1]] += 1

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())


def connect(location: S3Location, pool_size: int) -> Connection:
    """A client for ``location``; raises :class:`PackError` when no credentials or profile can be used.

    Makes no request: whether the credentials work is found out by the first one.
    """
    quiet_sdk_logging()
    shown = location.endpoint_url or "the default S3 endpoint"
    describer = Describer(location.shown, shown)
    core = _botocore_session()
    profile = None
    if location.endpoint_profile and _has_profile(core, location.endpoint_profile):
        profile = location.endpoint_profile
    try:
        session = boto3.Session(profile_name=profile, botocore_session=core)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise describer.permanent(exc, "read the credentials") from None
    if credentials is None:
        where = (f"an [{location.endpoint_profile}] profile in the AWS credentials file or "
                 if location.endpoint_profile else "")
        raise PackError(f"{location.shown}: no S3 credentials found; put them in {where}AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY, or a profile chosen with AWS_PROFILE")
    frozen = credentials.get_frozen_credentials()
    active_profile = profile or os.environ.get("AWS_PROFILE") or session.profile_name
    describer.credentials = _credentials_source(session, credentials.method, active_profile)
    describer.secrets = [s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s]
    config = Config(
        region_name=session.region_name or DEFAULT_REGION,
        # Retries are decided by AbortAwareRetries (botocore's standard conditions, abortable back-off).
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=pool_size,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        # Many S3-compatible servers refuse botocore's default trailing CRC checksums; the
        # content's SHA-256 goes into the metadata anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # An in-house server rarely has wildcard DNS for virtual-hosted buckets.
        s3={"addressing_style": "path"} if location.endpoint_url else None,
        user_agent_extra="bat",
    )
    try:
        client = session.client("s3", endpoint_url=location.endpoint_url, config=config)
    except (BotoCoreError, ValueError) as exc:
        raise describer.permanent(exc, "set up the S3 client") from None
    endpoint_url = str(client.meta.endpoint_url)
    describer.endpoint = endpoint_url
    retries = AbortAwareRetries()
    client.meta.events.register_first("needs-retry.s3", retries)
    client.meta.events.register_last("before-call.s3.PutObject", _no_expect_for_small_bodies)
    connection = Connection(client, location, endpoint_url, describer, retries)
    client.meta.events.register("before-send.s3", connection.count)
    # The endpoint's own HTTP session (pool, proxies, timeouts) sends; the handler bounds the answer.
    client.meta.events.register_last("before-send.s3", BoundedAnswers(client._endpoint.http_session))
    return connection
