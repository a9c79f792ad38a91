"""botocore's exceptions as one line for the user, split into transient and permanent.

The messages are written here from the error code rather than passed on:
botocore's texts carry request URLs and server-supplied details, and a
chained exception would be shown whole with ``bat -d``.  Every message still
goes through :func:`scrub`, which blanks the access key and secret should a
server echo them.  Callers raise the result ``from None``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
)
from botocore.parsers import ResponseParserError

from bat_core.targets import PackError, RetryableError

from .answers import MAX_ANSWER, AnswerTooLarge

#: Error codes that mean "try again later" whatever the HTTP status.
TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "ServiceUnavailable", "RequestLimitExceeded", "TooManyRequestsException",
    "PriorRequestNotComplete", "OperationAborted",
})

#: What the SDK raises for a failed request: its errors, error answers, and answers it cannot parse
#: (botocore's parser error is not one of its BotoCoreErrors).
SDK_ERRORS = (BotoCoreError, ClientError, ResponseParserError)

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _reason(exc: BaseException) -> str:
    """The OS-level reason of a connection failure ("Connection refused"), without addresses."""
    inner = getattr(exc, "kwargs", {}).get("error", exc)
    found = _ERRNO.search(str(inner))
    if found:
        return found.group(1).strip().rstrip(".")
    if isinstance(exc, SSLError):
        return "TLS handshake or certificate check failed"
    if isinstance(exc, ReadTimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionClosedError):
        return "the server closed the connection"
    return type(inner).__name__


def client_error_code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", status or "Unknown")), int(status or 0)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        code, status = client_error_code(exc)
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    # Connection refused, reset, timeouts: worth another round, except TLS failures.
    return isinstance(exc, (ConnectionError, HTTPClientError)) and not isinstance(exc, SSLError)


class Describer:
    """Turns exceptions into one-line errors that name the place, never a credential."""

    def __init__(self, where: str, endpoint: str, credentials: str = "", secrets: Iterable[str] = ()) -> None:
        #: ``s3://bucket/prefix`` as the user wrote it.
        self.where = where
        self.endpoint = endpoint
        #: Where the credentials came from ("the [host:port] profile of ~/.aws/credentials").
        self.credentials = credentials
        self.secrets = list(secrets)

    def _from(self) -> str:
        return f" (credentials from {self.credentials})" if self.credentials else ""

    def message(self, exc: BaseException, doing: str) -> str:
        bucket = self.where
        if isinstance(exc, ClientError):
            code, status = client_error_code(exc)
            if code in ("NoSuchBucket",) or (code == "404" and doing.startswith("check")):
                text = f"{bucket}: no such bucket at {self.endpoint}"
            elif code in ("InvalidAccessKeyId", "InvalidClientTokenId", "AuthorizationHeaderMalformed"):
                text = f"{bucket}: the server does not know the access key{self._from()}"
            elif code == "SignatureDoesNotMatch":
                text = f"{bucket}: the secret key is wrong for this access key{self._from()}"
            elif code in ("AccessDenied", "AllAccessDisabled", "403", "Forbidden"):
                text = f"{bucket}: access denied when trying to {doing}{self._from()}"
            elif code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken"):
                text = f"{bucket}: the credentials have expired{self._from()}"
            elif code == "RequestTimeTooSkewed":
                text = f"{bucket}: this computer's clock differs too much from the server's"
            elif code == "InvalidBucketName":
                text = f"{bucket}: the server refuses the bucket name"
            elif code in ("PermanentRedirect", "301", "AuthorizationQueryParametersError", "IllegalLocationConstraint"):
                text = f"{bucket}: the bucket is in another region; set AWS_REGION or the profile's region"
            elif is_transient(exc):
                text = f"{bucket}: the server is busy or failing ({code}, HTTP {status}) while trying to {doing}"
            else:
                detail = str(exc.response.get("Error", {}).get("Message", ""))[:200]
                text = f"{bucket}: cannot {doing}: {code}" + (f" ({detail})" if detail else "")
        elif isinstance(exc, ProfileNotFound):
            text = f"{bucket}: AWS profile {exc.kwargs.get('profile', '')!r} not found in the AWS config files"
        elif isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
            text = f"{bucket}: no usable credentials for {self.endpoint} ({type(exc).__name__})"
        elif isinstance(exc, (ConnectionError, HTTPClientError)):
            text = f"{bucket}: cannot reach {self.endpoint}: {_reason(exc)}"
        elif isinstance(exc, AnswerTooLarge):
            text = (f"{bucket}: the answer of {self.endpoint} when trying to {doing} is larger than "
                    f"{MAX_ANSWER // (1024 * 1024)} MiB, which no S3 server sends; is it an S3 server?")
        elif isinstance(exc, ResponseParserError):
            text = f"{bucket}: the answer of {self.endpoint} when trying to {doing} is not valid S3 XML"
        elif isinstance(exc, BotoCoreError):
            text = f"{bucket}: cannot {doing}: {type(exc).__name__}"
        else:
            text = f"{bucket}: cannot {doing}: {type(exc).__name__}: {exc}"
        return scrub(text, self.secrets)

    def error(self, exc: BaseException, doing: str) -> Exception:
        """The exception to raise (``from None``): retryable when the failure is transient."""
        message = self.message(exc, doing)
        if is_transient(exc):
            return RetryableError(message)
        return PackError(message)

    def permanent(self, exc: BaseException, doing: str) -> PackError:
        """For checks before the pack starts: even a transient failure stops it there, retries spent."""
        return PackError(self.message(exc, doing))
