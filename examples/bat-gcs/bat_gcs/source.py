"""Reading one packed file for upload: abort checks, and the checksums of what was read.

Every object bat-gcs writes carries the SHA-256 of its content in its custom
metadata, and a later pack skips the object on the strength of that value
alone, so the value must be true of the bytes that were sent.  The engine
hashed the file before the transfer started; if the file changed since, the
bytes differ from the checksum.  :class:`SourceReader` therefore hashes what
it reads and compares before it hands out the last bytes: an upload of a file
that changed never completes, and no object claims a checksum it does not
have.  It also keeps the CRC32C that GCS computes for every object, to check
what arrived.
"""

from __future__ import annotations

import base64
import hashlib
from typing import BinaryIO

import google_crc32c

from bat_core.targets import CHUNK_SIZE, PackError, TransferIO, TransferItem


def crc32c_base64(checksum: google_crc32c.Checksum) -> str:
    """A CRC32C as GCS writes it: base64 of the big-endian 4 bytes."""
    return base64.b64encode(checksum.digest()).decode("ascii")


class SourceReader:
    """Random-access reads of ``item.read_from``, hashed once in order, checked at the end."""

    def __init__(self, item: TransferItem, io: TransferIO) -> None:
        self.item = item
        self.io = io
        self.size = item.size
        self.file: BinaryIO = open(item.read_from, "rb")  # noqa: SIM115 (closed by close())
        self.sha256 = hashlib.sha256()
        self.crc32c = google_crc32c.Checksum()
        #: Bytes hashed so far: always the first ``hashed`` bytes of the file.
        self.hashed = 0

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def crc32c_base64(self) -> str:
        return crc32c_base64(self.crc32c)

    def _changed(self, how: str) -> PackError:
        return PackError(f"{self.item.source}: changed while it was being packed ({how}); pack again")

    def _raw(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset``, read in chunks with abort checks in between."""
        self.file.seek(offset)
        parts = []
        left = n
        while left:
            self.io.check_abort()
            chunk = self.file.read(min(CHUNK_SIZE, left))
            if not chunk:
                raise self._changed(f"shorter than the {self.size} bytes planned")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def _hash(self, data: bytes) -> None:
        self.sha256.update(data)
        self.crc32c.update(data)
        self.hashed += len(data)
        if self.hashed == self.size:
            if self.file.read(1):
                raise self._changed(f"longer than the {self.size} bytes planned")
            if self.item.sha256 is not None and self.sha256.hexdigest() != self.item.sha256:
                raise self._changed("its SHA-256 is not the one computed before the upload")

    def hash_through(self, offset: int) -> None:
        """Hash up to ``offset`` without handing anything out (resuming an upload that got that far)."""
        while self.hashed < offset:
            self._hash(self._raw(self.hashed, min(CHUNK_SIZE, offset - self.hashed)))

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (never past ``size``).

        Raises :class:`PackError` when the file turns out to have changed:
        before the bytes that complete the file are returned.
        """
        n = max(0, min(n, self.size - offset))
        self.hash_through(offset)
        data = self._raw(offset, n)
        new = offset + n - self.hashed
        if new > 0:
            self._hash(data[n - new:])
        return data

    def read_all(self) -> bytes:
        return self.read_at(0, self.size)
