"""bat-gcs: pack into Google Cloud Storage with ``bat pack scene.blend gs://bucket/path``.

A third-party bat plugin, built only on bat's public API for target authors
(:mod:`bat_core.targets`): the ``gs`` scheme (:mod:`.plugin`), target strings
(:mod:`.address`), and the transfer that lists the prefix once and uploads
what is missing in parallel (:mod:`.transfer`, imported on demand: it loads
the Google client libraries).
"""

from .address import GcsAddress, parse

__version__ = "0.1.0"

__all__ = ["GcsAddress", "__version__", "parse"]
