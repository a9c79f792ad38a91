"""Answers of bounded size: botocore reads every non-streaming answer whole into memory.

A listing page, an error, a multipart answer are small from any real S3
server (a page of 1000 keys is under 2 MB).  A hostile or broken endpoint
could answer with gigabytes.  This ``before-send`` handler makes the request
itself with botocore's own HTTP session, asks it not to read the body, and
reads it here, at most :data:`MAX_ANSWER` bytes; past that the request fails
with :class:`AnswerTooLarge`, which is not retried.  Streaming answers
(``GetObject``) are left to their reader, which reads only what it needs.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ConnectionClosedError, ReadTimeoutError
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError

#: The largest non-streaming answer accepted.
MAX_ANSWER = 16 * 1024 * 1024
_CHUNK = 64 * 1024


class AnswerTooLarge(BotoCoreError):  # type: ignore[misc]
    fmt = "the answer from {endpoint_url} is larger than {limit} bytes"


class BoundedAnswers:
    """``before-send.s3`` handler of one client: sends the request, reads at most MAX_ANSWER of the answer."""

    def __init__(self, http_session: Any) -> None:
        self.http_session = http_session

    def __call__(self, request: Any = None, **kwargs: Any) -> Any:
        if request is None or request.stream_output or request.method == "HEAD":
            return None  # a HEAD answer has no body (its Content-Length is the object's)
        request.stream_output = True
        try:
            response = self.http_session.send(request)
        finally:
            request.stream_output = False
        try:
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_ANSWER:
                raise AnswerTooLarge(endpoint_url=request.url.split("?", 1)[0], limit=MAX_ANSWER)
            chunks: list[bytes] = []
            got = 0
            for chunk in response.raw.stream(_CHUNK, decode_content=False):
                got += len(chunk)
                if got > MAX_ANSWER:
                    raise AnswerTooLarge(endpoint_url=request.url.split("?", 1)[0], limit=MAX_ANSWER)
                chunks.append(chunk)
        except URLLib3ReadTimeoutError as exc:
            response.raw.close()
            raise ReadTimeoutError(endpoint_url=request.url, error=exc) from None
        except ProtocolError as exc:
            response.raw.close()
            raise ConnectionClosedError(error=exc, request=request, endpoint_url=request.url) from None
        except BaseException:
            response.raw.close()
            raise
        response._content = b"".join(chunks)
        return response
