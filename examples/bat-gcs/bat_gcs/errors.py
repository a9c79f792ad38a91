"""What went wrong, in one line: permanent failures as ``PackError``, transient ones as ``RetryableError``.

The transfer engine retries a file whose send raised ``RetryableError`` in its
next round and stops the pack on ``PackError``, so the only decision here is
which failures can heal by themselves: timeouts, dropped connections, 408,
429 and 5xx answers.  Everything else (no such bucket, access denied, bad
credentials) cannot, and is said once, without a traceback and without the
request's headers.
"""

from __future__ import annotations

import re

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud.storage import exceptions as media_exceptions

from bat_core.targets import PackError, RetryableError

#: HTTP statuses worth another try: request timeout, throttling, server trouble.
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

#: Network-level failures: the request may not have arrived, or its answer was lost.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exceptions.TransportError,
    ConnectionError,
    TimeoutError,
)

CREDENTIALS_HINT = ("run 'gcloud auth application-default login' or set GOOGLE_APPLICATION_CREDENTIALS "
                    "to a service account key file")


def _network_reason(exc: BaseException) -> str:
    """The root cause of a failed connection ("Connection refused"), not urllib3's paragraph."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match.group(1).strip()
    return _first_line(text)[:120] or "no answer"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:300]


def status_error(status: int, message: str, where: str) -> PackError | RetryableError:
    """The error for an HTTP answer ``status`` to a request about ``where``."""
    detail = _first_line(message)
    if status in TRANSIENT_STATUS:
        return RetryableError(f"{where}: HTTP {status}" + (f" ({detail})" if detail else ""))
    if status == 401:
        return PackError(f"{where}: the credentials were refused (HTTP 401); {CREDENTIALS_HINT}")
    if status == 403:
        return PackError(f"{where}: access denied (HTTP 403)" + (f": {detail}" if detail else ""))
    return PackError(f"{where}: HTTP {status}" + (f": {detail}" if detail else ""))


def _api_message(exc: api_exceptions.GoogleAPICallError) -> str:
    """GCS's own words (``error.message`` of the JSON body), not the request line the library adds."""
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
        except (ValueError, AttributeError):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return exc.message or ""


def classify(exc: BaseException, where: str) -> PackError | RetryableError | None:
    """The bat error for an exception of the Google client libraries or requests; None: not ours."""
    if isinstance(exc, api_exceptions.GoogleAPICallError) and exc.code is not None:
        return status_error(int(exc.code), _api_message(exc), where)
    if isinstance(exc, media_exceptions.DataCorruption):
        return RetryableError(f"{where}: the upload arrived corrupted ({_first_line(str(exc))})")
    if isinstance(exc, media_exceptions.InvalidResponse):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status_error(status, getattr(response, "text", "") or "", where)
    if isinstance(exc, auth_exceptions.InvalidOperation):
        # A 401 made the client refresh credentials it cannot refresh (anonymous ones).
        return PackError(f"{where}: the server asked for credentials ({_first_line(str(exc))}); "
                         f"{CREDENTIALS_HINT}")
    if isinstance(exc, auth_exceptions.DefaultCredentialsError):
        return PackError(f"{where}: no Google Cloud credentials found; {CREDENTIALS_HINT}")
    if isinstance(exc, auth_exceptions.RefreshError):
        return PackError(f"{where}: the credentials could not be refreshed ({_first_line(str(exc))}); "
                         f"{CREDENTIALS_HINT}")
    if isinstance(exc, NETWORK_ERRORS):
        return RetryableError(f"{where}: {type(exc).__name__}: {_network_reason(exc)}")
    return None


def permanent(error: PackError | RetryableError, prefix: str = "") -> PackError:
    """A transient error where no retry will happen (``start``): said as a permanent one."""
    if isinstance(error, PackError):
        return error
    return PackError(f"{prefix}{error}")
