"""Request bodies sent with ``Content-Encoding: gzip``, decoded here and not by aiohttp.

Doing it ourselves keeps the answer to other encodings ours (400 "Content-Encoding
not supported", as Flamenco 2) and bounds the memory a small compressed body
can expand to: output comes in pieces of at most 1 MiB, so an upload that
inflates past its declared size is stopped after one piece too many.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

PIECE = 1 << 20


class BadBody(Exception):
    """The body cannot be decoded (broken or truncated gzip)."""


def is_gzip(content_encoding: str | None) -> bool:
    return (content_encoding or "").strip().lower() in ("gzip", "x-gzip")


def encoding_supported(content_encoding: str | None) -> bool:
    return (content_encoding or "identity").strip().lower() in ("", "identity", "gzip", "x-gzip")


class GzipInflater:
    """Incremental gzip decoding in bounded pieces."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._d.eof:
            if data:
                raise BadBody("gzip: data after the end of the compressed stream")
            return
        buf = data
        try:
            while buf:
                out = self._d.decompress(buf, PIECE)
                if out:
                    yield out
                buf = self._d.unconsumed_tail
                if self._d.eof:
                    if self._d.unused_data:
                        raise BadBody("gzip: data after the end of the compressed stream")
                    return
        except zlib.error as exc:
            raise BadBody(f"gzip: {exc}") from None

    def finish(self) -> None:
        if not self._d.eof:
            raise BadBody("gzip: unexpected end of the compressed stream")


def decode_all(data: bytes, gzipped: bool, limit: int) -> bytes | None:
    """A whole (small) body decoded; None when it decodes to more than ``limit`` bytes."""
    if not gzipped:
        return data
    inflater = GzipInflater()
    out = bytearray()
    for piece in inflater.feed(data):
        out += piece
        if len(out) > limit:
            return None
    inflater.finish()
    return bytes(out)
