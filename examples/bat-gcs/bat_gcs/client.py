"""The storage client: one per pack, shared by every worker thread.

``google.cloud.storage.Client`` sends its requests through a ``requests``
session whose connection pool (urllib3) is thread-safe, and Google documents
the client as safe to share between threads; what must not be shared are
``Blob`` objects, which carry per-upload state, so each send makes its own.
The default pool keeps 10 connections, more than the transfer's workers.

Credentials and project come from Google's usual chain (Application Default
Credentials: ``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth
application-default login``, the metadata server on Google Cloud).  With
``STORAGE_EMULATOR_HOST`` set, the client talks to that emulator without
credentials, as the library does on its own.
"""

from __future__ import annotations

import os

from google.cloud import storage

#: Project for requests that need one (none of bat-gcs's do: it only reads and writes objects).
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"


def make_client() -> storage.Client:
    """A client for the environment's credentials (or the emulator named by ``STORAGE_EMULATOR_HOST``)."""
    return storage.Client(project=os.environ.get(PROJECT_ENV) or None)
