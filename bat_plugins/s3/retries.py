"""botocore's retry conditions with a back-off that an abort cuts short.

botocore sleeps between attempts with ``time.sleep`` (up to 20 s in its
standard mode), which nothing can interrupt, and it retries a request whose
body read raised because the pack was aborted (that arrives as an
``HTTPClientError``, a transient error to botocore).  So the client is made
with botocore's own retries off (one attempt) and this handler, hooked first
on ``needs-retry``, decides instead: the standard mode's conditions (timeouts,
connection errors, 5xx, throttling), full-jitter exponential back-off waited
on the pack's abort event, and :class:`Aborted` at once when the pack is
being aborted.  botocore then retries immediately (a delay of 0).
"""

from __future__ import annotations

import functools
import random
import threading
from typing import Any

from botocore.retries.standard import RetryContext, StandardRetryConditions

from bat_core.targets import Aborted

#: Attempts per request (the first one included); the engine's rounds retry after that.
MAX_ATTEMPTS = 4
#: Longest wait between two attempts, in seconds.
MAX_BACKOFF = 5.0


def jitter() -> float:
    return random.random()


@functools.cache
def _conditions(max_attempts: int) -> StandardRetryConditions:
    return StandardRetryConditions(max_attempts=max_attempts)


class AbortAwareRetries:
    """A ``needs-retry`` handler: the delay before the next attempt, None for no retry."""

    def __init__(self, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.max_attempts = max_attempts
        #: Set by the transfer to the pack's abort event; never set before that.
        self.abort_event = threading.Event()
        self._local = threading.local()

    def attempts(self) -> int:
        return getattr(self._local, "max_attempts", self.max_attempts)

    def limit(self, max_attempts: int) -> _Limit:
        """``with retries.limit(2): ...``: fewer attempts for requests made by this thread."""
        return _Limit(self._local, max_attempts)

    def __call__(self, response: Any = None, attempts: int = 1, operation: Any = None,
                 caught_exception: BaseException | None = None, request_dict: Any = None,
                 **kwargs: Any) -> float | None:
        if self.abort_event.is_set():
            raise Aborted()
        http_response, parsed = response if response is not None else (None, None)
        if caught_exception is None and http_response is not None and http_response.status_code < 300:
            return None  # the common case, decided without building botocore's context
        context = RetryContext(attempt_number=attempts, operation_model=operation, parsed_response=parsed,
                               http_response=http_response, caught_exception=caught_exception,
                               request_context=(request_dict or {}).get("context", {}))
        if not _conditions(self.attempts()).is_retryable(context):
            return None
        delay = jitter() * min(MAX_BACKOFF, 0.25 * 2 ** attempts)
        if self.abort_event.wait(delay):
            raise Aborted()
        return 0


class _Limit:
    def __init__(self, local: threading.local, max_attempts: int) -> None:
        self.local = local
        self.max_attempts = max_attempts

    def __enter__(self) -> None:
        self.previous = getattr(self.local, "max_attempts", None)
        self.local.max_attempts = self.max_attempts

    def __exit__(self, *exc: object) -> None:
        if self.previous is None:
            del self.local.max_attempts
        else:
            self.local.max_attempts = self.previous
