"""The file header: pointer size, endianness, Blender version, block-header layout.

Blender up to 4.x writes a 12-byte header (``BLENDER-v402``); Blender 5.0 writes a
17-byte one (``BLENDER17-01v0500``) whose block headers carry 64-bit lengths.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class BlendHeader:
    """What the first bytes of an uncompressed blend file say about the rest."""

    size: int  # bytes the header itself takes
    pointer_size: int  # 4 or 8
    endian: str  # '<' or '>' for the struct module
    version: int  # e.g. 402 for 4.2, 500 for 5.0
    format_version: int  # 0 for the 12-byte header, 1 for BLENDER17-01
    raw: bytes

    @property
    def block_header_struct(self) -> struct.Struct:
        """Layout of one block header: (code, len, old, sdna, count), or (code, sdna, old,
        len, count) for format 1."""
        return _BHEAD_LAYOUTS[(self.format_version, self.pointer_size, self.endian)]

    @property
    def scan_struct(self) -> struct.Struct:
        """The start of a block header as (code, len, old), or (code, old, len) for format 1.

        Lengths are read unsigned, so a corrupt negative length cannot send the
        index scan backwards; it runs past the end of the file instead.
        """
        return _SCAN_LAYOUTS[(self.format_version, self.pointer_size, self.endian)]

    def with_length(self, block_header: bytes | memoryview, length: int) -> bytes:
        """A block header (as stored) with its length field set to ``length``."""
        layout = self.block_header_struct
        if self.format_version == 1:
            code, sdna, old, _, count = layout.unpack_from(block_header)
            return layout.pack(code, sdna, old, length, count)
        code, _, old, sdna, count = layout.unpack_from(block_header)
        return layout.pack(code, length, old, sdna, count)

    @property
    def pointer_format(self) -> str:
        return self.endian + ("Q" if self.pointer_size == 8 else "I")


# The small (format 0) block header is code, len, old, sdna, count; the large
# (format 1) one is code, sdna, old, len, count.  Lengths are read unsigned, as
# the index scan reads them: a length with the top bit set is a corrupt file,
# reported as a block running past the end, never a negative size.
_BHEAD_LAYOUTS = {
    (0, 4, "<"): struct.Struct("<4sIIii"),
    (0, 4, ">"): struct.Struct(">4sIIii"),
    (0, 8, "<"): struct.Struct("<4sIQii"),
    (0, 8, ">"): struct.Struct(">4sIQii"),
    (1, 8, "<"): struct.Struct("<4siQQq"),
}

_SCAN_LAYOUTS = {
    (0, 4, "<"): struct.Struct("<4sII"),
    (0, 4, ">"): struct.Struct(">4sII"),
    (0, 8, "<"): struct.Struct("<4sIQ"),
    (0, 8, ">"): struct.Struct(">4sIQ"),
    (1, 8, "<"): struct.Struct("<4s4xQQ"),
}


def parse_header(data: bytes) -> BlendHeader:
    """Parse the header at the start of ``data``; raise ValueError when it is not one."""
    if len(data) < 12 or not data.startswith(b"BLENDER"):
        raise ValueError("not a blend file (no BLENDER header)")
    marker = data[7:8]
    if marker in (b"_", b"-"):
        psize = 4 if marker == b"_" else 8
        endian_char = data[8:9]
        digits = data[9:12]
        if endian_char not in (b"v", b"V") or not digits.isdigit():
            raise ValueError(f"malformed blend file header {data[:12]!r}")
        return BlendHeader(12, psize, "<" if endian_char == b"v" else ">", int(digits), 0, bytes(data[:12]))
    if marker.isdigit():
        size_digits = data[7:9]
        if len(data) < 17 or not size_digits.isdigit() or int(size_digits) != 17:
            raise ValueError(f"unsupported blend file header {bytes(data[:17])!r}")
        raw = bytes(data[:17])
        fmt, endian_char, digits = raw[10:12], raw[12:13], raw[13:17]
        if raw[9:10] != b"-" or endian_char != b"v" or not fmt.isdigit() or not digits.isdigit():
            raise ValueError(f"malformed blend file header {raw!r}")
        if int(fmt) != 1:
            raise ValueError(f"unsupported blend file format version {int(fmt)}")
        return BlendHeader(17, 8, "<", int(digits), 1, raw)
    raise ValueError(f"malformed blend file header {bytes(data[:12])!r}")
