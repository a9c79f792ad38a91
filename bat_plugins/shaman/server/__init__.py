"""The Shaman server: one content-addressed store served over Flamenco 2's and Flamenco 3's APIs.

Modules: :mod:`.store` (blobs, uploads in flight, promotion), :mod:`.definitions`
(file lists and path rules), :mod:`.checkouts` (symlink directories),
:mod:`.uploads` (receiving one upload), :mod:`.auth` (tokens), :mod:`.gc`,
:mod:`.app` with :mod:`.routes_v2` and :mod:`.routes_v3` (aiohttp), :mod:`.serve`.
Only the last four import aiohttp.
"""
