"""Upload a pack into S3-compatible storage through the transfer engine.

``start`` makes the client and one small listing request (which proves the
endpoint, credentials and bucket, so a bad one stops the pack in one line
before anything is hashed), then lists the prefix in the background while
the engine hashes.  ``prepare`` settles what is already
there from that listing and the manifest (:mod:`.manifest`), with a HEAD
only for what they cannot settle.  ``send`` hands each file to boto3's
transfer manager (a multipart upload in parallel parts from
:data:`MULTIPART_THRESHOLD` on; smaller files in one ``PutObject`` from the
worker thread), streaming from disk, the content's
SHA-256 in the object's metadata.  ``finish(True)`` updates the manifest when
anything changed; ``finish(False)`` waits for the requests in flight and
aborts every multipart upload this pack started, so no parts are left behind.
Uploads that cannot be aborted then (the pack killed, the server down) are
aborted by a later pack, through :mod:`.journal`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError
from s3transfer.manager import TransferConfig, TransferManager
from s3transfer.subscribers import BaseSubscriber
from s3transfer.utils import ReadFileChunk

from bat_core.targets import Aborted, PackError, Transfer, TransferIO, TransferItem

from . import journal, manifest
from .address import MAX_KEY_BYTES, S3Location
from .connection import Connection, connect
from .errors import SDK_ERRORS, client_error_code

log = logging.getLogger(__name__)

#: Files this big or bigger go up as multipart uploads, in parts of MULTIPART_CHUNK bytes.
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNK = 8 * 1024 * 1024
#: Requests the transfer manager runs at once (parts of big files and small files alike).
REQUEST_CONCURRENCY = 10
#: Attempts of the first request: an unreachable endpoint is reported without a long wait.
START_ATTEMPTS = 2
#: Metadata key of the content's SHA-256 (``x-amz-meta-sha256``).
SHA256_KEY = "sha256"
#: The listing stops after this many objects (memory and time stay bounded whatever the server
#: answers); files it did not reach are checked with a HEAD request each.
MAX_LISTED = 200_000


@dataclass(frozen=True)
class Listed:
    size: int
    etag: str


def _etag(value: Any) -> str:
    return str(value or "").strip('"')


#: Where a complete or abort request keeps its upload id for the after-call handler.
_UPLOAD_ID = "bat_upload_id"


def _note_upload_id(params: Any = None, context: Any = None, **kwargs: Any) -> None:
    if isinstance(params, dict) and isinstance(context, dict) and params.get("UploadId"):
        context[_UPLOAD_ID] = str(params["UploadId"])


class _Progress(BaseSubscriber):  # type: ignore[misc]
    """Reports an item's bytes to the engine; sees the abort between chunks; tells when done.

    s3transfer reports rewinds (a retried part) as negative progress: only
    bytes beyond the most reached so far are passed on.
    """

    def __init__(self, io: TransferIO) -> None:
        self.io = io
        self.done = threading.Event()
        self._sent = 0
        self._reported = 0
        self._lock = threading.Lock()

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        self.add(bytes_transferred)

    def add(self, bytes_transferred: int) -> None:
        self.io.check_abort()
        with self._lock:
            self._sent += bytes_transferred
            more = self._sent - self._reported
            if more > 0:
                self._reported = self._sent
        if more > 0:
            self.io.progress(more)

    def on_done(self, future: Any, **kwargs: Any) -> None:
        self.done.set()


class _Listing:
    """The objects under the prefix and the manifest, fetched in a background thread."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.objects: dict[str, Listed] = {}
        self.manifest: dict[str, manifest.Entry] = {}
        self.error: BaseException | None = None
        #: Why the listing stopped before its end ("" when it is complete).
        self.incomplete = ""
        self.done = threading.Event()
        threading.Thread(target=self._run, name="bat-s3-listing", daemon=True).start()

    def _add(self, page: dict[str, Any]) -> None:
        for obj in page.get("Contents", ()):
            self.objects[obj["Key"]] = Listed(int(obj["Size"]), _etag(obj.get("ETag")))

    def _run(self) -> None:
        conn = self.connection
        loc = conn.location
        try:
            more: dict[str, str] = {}
            tokens: set[str] = set()
            while True:
                page = conn.client.list_objects_v2(Bucket=loc.bucket, Prefix=loc.prefix, **more)
                self._add(page)
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    break
                if token in tokens:
                    self.incomplete = "the server's listing goes round in circles"
                    break
                if len(self.objects) >= MAX_LISTED:
                    self.incomplete = f"more than {MAX_LISTED} objects"
                    break
                tokens.add(str(token))
                more = {"ContinuationToken": token}
            if loc.key(manifest.NAME) in self.objects:
                body = conn.client.get_object(Bucket=loc.bucket, Key=loc.key(manifest.NAME))["Body"]
                with body:
                    self.manifest = manifest.parse(body.read())
        except (*SDK_ERRORS, Aborted) as exc:
            self.error = exc
        finally:
            self.done.set()

    def wait(self, io: TransferIO) -> None:
        while not self.done.wait(0.1):
            io.check_abort()


class S3Transfer(Transfer):
    """Moves a pack's files into one bucket under one key prefix."""

    workers = 16
    needs_checksums = True

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self.connection: Connection | None = None
        self._manager: TransferManager | None = None
        self._listing: _Listing | None = None
        self._lock = threading.Lock()
        #: Relative keys -> manifest entries, for objects found to hold the item's content.
        self._settled: dict[str, manifest.Entry] = {}
        #: Relative keys -> entries of the objects this pack uploaded ("" for the ETag of a multipart upload).
        self._uploaded: dict[str, manifest.Entry] = {}
        #: Multipart uploads this pack started and has not seen completed or aborted: upload id -> key.
        self._open_uploads: dict[str, str] = {}
        self._journal = journal.Journal()
        self._manifest_changed = False

    # --- set-up ----------------------------------------------------------------------

    def start(self) -> None:
        pool = REQUEST_CONCURRENCY + self.workers + 2
        conn = self.connection = connect(self.location, pool)
        loc = self.location
        events = conn.client.meta.events
        events.register("after-call.s3.CreateMultipartUpload", self._upload_started)
        for ending in ("CompleteMultipartUpload", "AbortMultipartUpload"):
            events.register(f"before-parameter-build.s3.{ending}", _note_upload_id)
            events.register(f"after-call.s3.{ending}", self._upload_ended)
        try:
            # One key is enough to prove endpoint, credentials and bucket; the listing itself
            # goes on in the background while the engine hashes.
            with conn.retries.limit(START_ATTEMPTS):
                conn.client.list_objects_v2(Bucket=loc.bucket, Prefix=loc.prefix, MaxKeys=1)
        except SDK_ERRORS as exc:
            raise conn.describer.permanent(exc, "list the bucket") from None
        self._abort_abandoned(conn)
        self._listing = _Listing(conn)
        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK,
                                max_request_concurrency=REQUEST_CONCURRENCY)
        self._manager = TransferManager(conn.client, config)

    def _upload_started(self, parsed: Any = None, **kwargs: Any) -> None:
        if isinstance(parsed, dict) and parsed.get("UploadId"):
            upload_id, key = str(parsed["UploadId"]), str(parsed.get("Key", ""))
            with self._lock:
                self._open_uploads[upload_id] = key
                if self.connection is not None:
                    self._journal.record(journal.OpenUpload(self.connection.endpoint_url, self.location.bucket,
                                                            key, upload_id))

    def _upload_ended(self, http_response: Any = None, context: Any = None, **kwargs: Any) -> None:
        """After a complete or an abort: the upload is no longer open when the server said yes."""
        upload_id = (context or {}).get(_UPLOAD_ID)
        if upload_id and getattr(http_response, "status_code", 500) < 300:
            with self._lock:
                self._open_uploads.pop(upload_id, None)

    def _abort_abandoned(self, conn: Connection) -> None:
        """Abort what earlier packs, killed or cut off from the server, left open in this bucket."""

        def abort(upload: journal.OpenUpload) -> bool:
            try:
                conn.client.abort_multipart_upload(Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id)
            except ClientError as exc:
                code, status = client_error_code(exc)
                return status == 404 or code in ("NoSuchUpload", "NotFound", "404")  # completed, or gone
            except (BotoCoreError, ResponseParserError):
                return False
            return True

        with conn.retries.limit(START_ATTEMPTS):
            settled = journal.abort_abandoned(conn.endpoint_url, self.location.bucket, abort)
        if settled:
            log.info("aborted %d multipart upload(s) that an earlier pack left open", settled)

    def _conn(self) -> Connection:
        if self.connection is None:
            raise PackError(f"{self.location.shown}: the S3 transfer was not started")
        return self.connection

    def _key(self, item: TransferItem) -> tuple[str, str]:
        rel = item.dest.as_posix()
        key = self.location.key(rel)
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            raise PackError(f"cannot store {item.source} in S3: its name is not valid UTF-8") from None
        if size > MAX_KEY_BYTES:
            raise PackError(f"cannot store {item.source} in S3: the key {key[:60]}... is longer than "
                            f"{MAX_KEY_BYTES} bytes")
        if rel == manifest.NAME:
            raise PackError(f"cannot pack {item.source} as {rel}: that name is bat's manifest in S3")
        return rel, key

    # --- what is already there -----------------------------------------------------

    def prepare(self, items: Sequence[TransferItem], io: TransferIO) -> Sequence[TransferItem]:
        conn = self._conn()
        conn.retries.abort_event = io.abort_event
        keyed = [(item, *self._key(item)) for item in items]
        if io.round > 1 or self._listing is None:
            # What failed or was deferred last round: send again (uploading is always safe).
            return sorted(items, key=lambda i: -i.size)
        listing = self._listing
        listing.wait(io)
        if listing.error is not None:
            if isinstance(listing.error, Aborted):
                raise Aborted()
            raise conn.describer.error(listing.error, "list the bucket") from None
        if listing.incomplete:
            log.warning("%s: listing stopped (%s); checking each file with a HEAD request instead",
                        self.location.shown, listing.incomplete)
        send: list[TransferItem] = []
        unsure: list[tuple[TransferItem, str, str]] = []
        for item, rel, key in keyed:
            have = listing.objects.get(key)
            if have is None and listing.incomplete:
                unsure.append((item, rel, key))
                continue
            if have is None or have.size != item.size:
                send.append(item)
                continue
            entry = listing.manifest.get(rel)
            if entry is not None and (entry.size, entry.etag) == (have.size, have.etag):
                if entry.sha256 == item.sha256:
                    self._settled[rel] = entry
                else:
                    send.append(item)
                continue
            unsure.append((item, rel, key))
        send += self._check_heads(unsure, io)
        return sorted(send, key=lambda i: -i.size)

    def _check_heads(self, unsure: list[tuple[TransferItem, str, str]], io: TransferIO) -> list[TransferItem]:
        """HEAD each object the listing and manifest cannot settle; the items to send."""
        if not unsure:
            return []
        conn = self._conn()
        send: list[TransferItem] = []

        def head(item: TransferItem, rel: str, key: str) -> None:
            io.check_abort()
            try:
                info = conn.client.head_object(Bucket=self.location.bucket, Key=key)
            except ClientError as exc:
                code, status = client_error_code(exc)
                if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
                    send.append(item)
                    return
                if status in (401, 403):
                    raise conn.describer.permanent(exc, f"read {key}") from None
                send.append(item)  # transient after retries: upload it, which is always safe
                return
            except (BotoCoreError, ResponseParserError):
                send.append(item)
                return
            sha = (info.get("Metadata") or {}).get(SHA256_KEY)
            if sha == item.sha256 and int(info.get("ContentLength", -1)) == item.size:
                with self._lock:
                    self._settled[rel] = manifest.Entry(sha, item.size, _etag(info.get("ETag")))
                    self._manifest_changed = True
            else:
                send.append(item)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="bat-s3-head") as pool:
            futures = [pool.submit(head, *u) for u in unsure]
            try:
                for future in futures:
                    while True:
                        try:
                            future.result(timeout=0.1)
                            break
                        except TimeoutError:
                            io.check_abort()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return send

    # --- uploads -------------------------------------------------------------------

    def send(self, item: TransferItem, io: TransferIO) -> None:
        conn = self._conn()
        conn.retries.abort_event = io.abort_event
        if not item.sha256:
            raise PackError(f"{item.source}: no SHA-256 was computed for the S3 upload")
        rel, key = self._key(item)
        metadata = {SHA256_KEY: item.sha256}
        try:
            if item.size < MULTIPART_THRESHOLD:
                etag = self._put(conn, item, key, metadata, io)
            else:
                self._multipart(item, key, metadata, io)
                etag = ""  # s3transfer does not pass the answer on: finish() asks with a HEAD
        except SDK_ERRORS as exc:
            raise conn.describer.error(exc, f"upload {key}") from None
        with self._lock:
            self._uploaded[rel] = manifest.Entry(item.sha256, item.size, etag)
            self._manifest_changed = True

    def _put(self, conn: Connection, item: TransferItem, key: str, metadata: dict[str, str],
             io: TransferIO) -> str:
        """One ``PutObject`` from this thread (s3transfer's hand-offs cost more than the request); the ETag."""
        progress = _Progress(io)
        # Callbacks stay off while botocore reads the body to sign it (s3transfer's handlers on this client).
        with ReadFileChunk.from_filename(str(item.read_from), 0, item.size, callbacks=[progress.add],
                                         enable_callbacks=False) as body:
            answer = conn.client.put_object(Bucket=self.location.bucket, Key=key, Body=body, Metadata=metadata)
        return _etag(answer.get("ETag"))

    def _multipart(self, item: TransferItem, key: str, metadata: dict[str, str], io: TransferIO) -> None:
        """Parts in parallel through s3transfer; on an abort, the upload is cancelled (and aborted by it)."""
        manager = self._manager
        if manager is None:
            raise PackError(f"{self.location.shown}: the S3 transfer was not started")
        progress = _Progress(io)
        future = manager.upload(str(item.read_from), self.location.bucket, key, extra_args={"Metadata": metadata},
                                subscribers=[progress])
        while not progress.done.wait(0.1):
            if io.aborted:
                future.cancel()
                raise Aborted()
        try:
            future.result()
        except (Aborted, CancelledError):
            raise Aborted() from None

    # --- the end -------------------------------------------------------------------

    def finish(self, completed: bool) -> None:
        conn = self.connection
        if conn is None:
            return
        # Clean-up requests must not be cut short by the pack's abort.
        conn.retries.abort_event = threading.Event()
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.shutdown(cancel=not completed)
        try:
            if completed and self._manifest_changed:
                self._write_manifest(conn)
            # Also after a complete pack: an upload whose parts failed when the server went away,
            # and whose abort failed with them, is still open (its file went up again since).
            self._abort_open_uploads(conn)
        finally:
            with self._lock:
                left = [journal.OpenUpload(conn.endpoint_url, self.location.bucket, key, upload_id)
                        for upload_id, key in self._open_uploads.items()]
            self._journal.close(left)
            conn.client.close()

    def _write_manifest(self, conn: Connection) -> None:
        """Entries for what this pack uploaded or checked, and the old ones the listing still matches."""
        loc = self.location
        try:
            entries: dict[str, manifest.Entry] = {}
            if self._listing is not None:
                for rel, entry in self._listing.manifest.items():
                    have = self._listing.objects.get(loc.key(rel))
                    if have is not None and (have.size, have.etag) == (entry.size, entry.etag):
                        entries[rel] = entry
            entries.update(self._settled)
            for rel, entry in self._uploaded.items():
                if not entry.etag:
                    head = conn.client.head_object(Bucket=loc.bucket, Key=loc.key(rel))
                    if int(head.get("ContentLength", -1)) != entry.size:
                        continue
                    entry = manifest.Entry(entry.sha256, entry.size, _etag(head.get("ETag")))
                entries[rel] = entry
            conn.client.put_object(Bucket=loc.bucket, Key=loc.key(manifest.NAME), Body=manifest.dump(entries),
                                   ContentType="application/json")
        except SDK_ERRORS as exc:
            log.warning("%s; the next pack checks each object with a HEAD request instead",
                        conn.describer.message(exc, f"write the manifest {loc.key(manifest.NAME)}"))

    def _abort_open_uploads(self, conn: Connection) -> None:
        """Abort the multipart uploads this pack started and did not complete (their parts go too)."""
        loc = self.location
        with self._lock:
            mine = dict(self._open_uploads)
        if not mine:
            return
        try:
            paginator = conn.client.get_paginator("list_multipart_uploads")
            pending = [(u["Key"], u["UploadId"]) for page in paginator.paginate(Bucket=loc.bucket, Prefix=loc.prefix)
                       for u in page.get("Uploads", ()) if u.get("UploadId") in mine]
            listed = {upload_id for _, upload_id in pending}
            with self._lock:
                for upload_id in mine.keys() - listed:
                    self._open_uploads.pop(upload_id, None)  # completed or aborted: the server has none
            for key, upload_id in pending:
                conn.client.abort_multipart_upload(Bucket=loc.bucket, Key=key, UploadId=upload_id)
                with self._lock:
                    self._open_uploads.pop(upload_id, None)
        except SDK_ERRORS as exc:
            log.warning("%s; the next pack to this bucket aborts them",
                        conn.describer.message(exc, "abort the unfinished multipart uploads"))

    def report(self) -> dict[str, Any]:
        """The endpoint (resolved by boto3 for ``s3://``) and the S3 requests made, retries included."""
        conn = self.connection
        if conn is None:
            return {}
        return {"endpoint": conn.endpoint_url, "requests": conn.total_requests}
