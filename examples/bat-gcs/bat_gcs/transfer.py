"""The GCS transfer: one listing decides what to upload, worker threads upload the rest.

**What counts as already there.**  Every object bat-gcs uploads carries the
SHA-256 of its content in its custom metadata (``bat-sha256``), written in
the same request that carries the content (or opens the resumable session),
and checked against the bytes actually read before the upload completes
(:mod:`.source`).  A GCS listing returns each object's size, CRC32C and
custom metadata, so one listing of the pack's prefix settles every file:

1. an object with the file's size and ``bat-sha256`` is the file: skipped,
   without reading anything (the engine's checksum cache means an unchanged
   file is not even hashed again);
2. an object with the file's size but no ``bat-sha256`` (uploaded by
   ``gcloud storage cp``, ``gsutil``...) is compared by CRC32C, the checksum
   GCS keeps for every object: the local file is read once to compute it
   (in a worker thread, :meth:`GcsTransfer.is_present`), and a match is
   skipped;
3. anything else is uploaded.

Custom metadata belongs to one generation of an object: whoever overwrites
the object writes new metadata (none, with most tools), so an old
``bat-sha256`` never outlives the content it describes.

**Uploads.**  Files smaller than ``resumable_threshold`` (8 MiB) go in one
request with their CRC32C, which GCS verifies.  Larger ones are resumable
uploads in ``chunk_size`` chunks (:mod:`.resumable`), resumed where they
stopped after a dropped connection, and checked against GCS's CRC32C of the
object when they complete.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import google_crc32c
import requests
from google.cloud import storage
from requests.adapters import HTTPAdapter

from bat_core.targets import (
    CHUNK_SIZE,
    Aborted,
    PackError,
    RetryableError,
    SendOutcome,
    Transfer,
    TransferIO,
    TransferItem,
)

from .address import GcsAddress, check_object_name
from .client import make_client
from .errors import classify, permanent
from .resumable import CHUNK_QUANTUM, TIMEOUT, Chunks, Finished, SessionGone, Sessions, cancel
from .source import SourceReader, crc32c_base64

#: The custom metadata key holding the SHA-256 (lowercase hex) of an object's content.
SHA256_KEY = "bat-sha256"
#: Files this big or bigger are resumable uploads.
RESUMABLE_THRESHOLD = 8 * 1024 * 1024
#: Chunk size of resumable uploads (a multiple of 256 KiB).
RESUMABLE_CHUNK = 8 * 1024 * 1024
#: Objects per listing page (GCS's maximum).
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Listed:
    """What the listing says about one object."""

    size: int
    crc32c: str | None
    sha256: str | None


class GcsTransfer(Transfer):
    """Packs into ``gs://bucket/prefix``."""

    workers = 8
    needs_checksums = True

    def __init__(self, address: GcsAddress, *, client_factory: Callable[[], storage.Client] = make_client,
                 resumable_threshold: int = RESUMABLE_THRESHOLD, chunk_size: int = RESUMABLE_CHUNK) -> None:
        if chunk_size <= 0 or chunk_size % CHUNK_QUANTUM:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_QUANTUM}")
        self.address = address
        self.client_factory = client_factory
        self.resumable_threshold = resumable_threshold
        self.chunk_size = chunk_size
        self.client: storage.Client | None = None
        self.bucket: storage.Bucket | None = None
        self.http: requests.Session | None = None
        self.sessions = Sessions()
        #: Object name -> the CRC32C GCS has for it, for same-sized objects without ``bat-sha256``.
        self.compare_crc: dict[str, str] = {}
        #: Resumable sessions opened (for the report), counted by worker threads.
        self.resumable_uploads = 0
        self._count_lock = threading.Lock()

    # --- main thread -----------------------------------------------------------------

    def start(self) -> None:
        url = self.address.url
        try:
            self.client = self.client_factory()
            self.bucket = self.client.bucket(self.address.bucket)
            # One tiny listing: the bucket exists, the credentials work, listing is allowed.
            pages = self.client.list_blobs(self.bucket, prefix=self._list_prefix(), max_results=1,
                                           fields="items(name)", timeout=TIMEOUT, retry=None)
            next(iter(pages), None)
        except Exception as exc:
            if getattr(exc, "code", None) == 404:
                raise PackError(f"{url}: no such bucket {self.address.bucket!r}") from None
            error = classify(exc, url)
            if error is None:  # not a failure the Google libraries document: still one line
                raise PackError(f"{url}: {type(exc).__name__}: {exc}") from None
            raise permanent(error, "cannot reach Google Cloud Storage: ") from None
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(10, self.workers))
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)

    def finish(self, completed: bool) -> None:
        # Unfinished sessions (an abort, a failure): cancel them rather than leave them for a week.
        if self.http is not None:
            for url in self.sessions.drain():
                cancel(self.http, url)
            self.http.close()

    def report(self) -> dict[str, Any]:
        return {"resumable_uploads": self.resumable_uploads}

    # --- the listing (a background thread) -------------------------------------------

    def _list_prefix(self) -> str | None:
        return f"{self.address.prefix}/" if self.address.prefix else None

    def _name(self, item: TransferItem) -> str:
        return self.address.object_name(item.dest.as_posix())

    def _listing(self, io: TransferIO) -> dict[str, Listed]:
        assert self.client is not None and self.bucket is not None
        found: dict[str, Listed] = {}
        where = f"listing {self.address.url}"
        try:
            blobs = self.client.list_blobs(self.bucket, prefix=self._list_prefix(), page_size=PAGE_SIZE,
                                           fields="items(name,size,crc32c,metadata),nextPageToken",
                                           timeout=TIMEOUT, retry=None)
            for page in blobs.pages:
                io.check_abort()
                for blob in page:
                    meta = blob.metadata or {}
                    found[blob.name] = Listed(int(blob.size or 0), blob.crc32c, meta.get(SHA256_KEY))
        except Aborted:
            raise
        except Exception as exc:
            error = classify(exc, where)
            if error is None:
                raise
            raise error from None
        return found

    def prepare(self, items: Sequence[TransferItem], io: TransferIO) -> Sequence[TransferItem]:
        url = self.address.url
        for item in items:
            check_object_name(self._name(item), url)
        listing = self._listing(io)
        send = []
        for item in items:
            name = self._name(item)
            there = listing.get(name)
            if there is None or there.size != item.size:
                send.append(item)
            elif there.sha256 is not None:
                if there.sha256 != item.sha256:
                    send.append(item)
            elif there.crc32c:
                self.compare_crc[name] = there.crc32c
                send.append(item)
            else:
                send.append(item)
        return send

    # --- worker threads ----------------------------------------------------------------

    def is_present(self, item: TransferItem, io: TransferIO) -> bool:
        """A same-sized object another tool uploaded: the same content when the CRC32C matches."""
        listed = self.compare_crc.get(self._name(item))
        if listed is None:
            return False
        checksum = google_crc32c.Checksum()
        with open(item.read_from, "rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                io.check_abort()
                checksum.update(chunk)
        return crc32c_base64(checksum) == listed

    def _blob(self, item: TransferItem) -> storage.Blob:
        assert self.bucket is not None
        blob = self.bucket.blob(self._name(item))
        blob.metadata = {SHA256_KEY: item.sha256}
        blob.content_type = mimetypes.guess_type(item.dest.name)[0] or "application/octet-stream"
        return blob

    def send(self, item: TransferItem, io: TransferIO) -> SendOutcome:
        if item.sha256 is None:  # the engine sets it: needs_checksums
            raise PackError(f"{item.source}: no checksum was computed for it")
        if item.size >= self.resumable_threshold:
            return self._send_resumable(item, io)
        where = self._url(item)
        with SourceReader(item, io) as reader:
            data = reader.read_all()
        blob = self._blob(item)
        try:
            blob.upload_from_string(data, content_type=blob.content_type, checksum="crc32c",
                                    timeout=TIMEOUT, retry=None)
        except Exception as exc:
            error = classify(exc, where)
            if error is None:
                raise
            raise error from None
        io.progress(item.size)
        return SendOutcome.SENT

    def _url(self, item: TransferItem) -> str:
        return f"gs://{self.address.bucket}/{self._name(item)}"

    # --- resumable uploads -------------------------------------------------------------

    def _open_session(self, item: TransferItem, where: str) -> str:
        blob = self._blob(item)
        try:
            url: str = blob.create_resumable_upload_session(content_type=blob.content_type, size=item.size,
                                                            timeout=TIMEOUT, checksum=None, retry=None)
        except Exception as exc:
            error = classify(exc, where)
            if error is None:
                raise
            raise error from None
        with self._count_lock:
            self.resumable_uploads += 1
        return url

    def _send_resumable(self, item: TransferItem, io: TransferIO) -> SendOutcome:
        assert self.http is not None and item.sha256 is not None
        where = self._url(item)
        key = (self._name(item), item.sha256, item.size)
        with SourceReader(item, io) as reader:
            url = self.sessions.get(key)
            committed: int | Finished = 0
            chunks = None
            if url is not None:  # a session from an earlier round: resume it
                chunks = Chunks(self.http, url, reader, io, self.chunk_size, where)
                try:
                    committed = chunks.status()
                except SessionGone:
                    self.sessions.pop(key)
                    chunks = None
            if chunks is None:
                url = self._open_session(item, where)
                self.sessions.put(key, url)
                chunks = Chunks(self.http, url, reader, io, self.chunk_size, where)
            try:
                finished = committed if isinstance(committed, Finished) else chunks.send(committed)
            except SessionGone:
                self.sessions.pop(key)
                raise RetryableError(f"{where}: the upload session expired") from None
            except RetryableError:
                raise  # the session stays for the next round
            except BaseException:
                self.sessions.pop(key)
                cancel(self.http, chunks.url)
                raise
            self.sessions.pop(key)
            if isinstance(committed, Finished):
                reader.hash_through(item.size)  # an earlier round completed it: check what it holds
            self._check_arrived(finished.resource, reader, item, where)
        return SendOutcome.SENT

    def _check_arrived(self, resource: dict[str, object], reader: SourceReader, item: TransferItem,
                       where: str) -> None:
        """The object GCS made is the file: its size and CRC32C; otherwise delete it and try again."""
        size = resource.get("size")
        crc = resource.get("crc32c")
        if str(size) == str(item.size) and crc == reader.crc32c_base64:
            return
        generation = resource.get("generation")
        assert self.bucket is not None
        try:
            self.bucket.blob(self._name(item)).delete(
                if_generation_match=int(str(generation)) if generation is not None else None,
                timeout=TIMEOUT, retry=None)
        except Exception as exc:
            # Left in place it would claim a checksum it does not have: say so and stop.
            raise PackError(f"{where}: the upload arrived corrupted and could not be deleted ({exc}); "
                            f"delete it before packing again") from None
        raise RetryableError(f"{where}: the upload arrived corrupted (size {size}, CRC32C {crc}); sending it again")
