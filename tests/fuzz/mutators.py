"""Structure-aware mutations of blend files, for the fuzzer.

The blend file is parsed here with a small reader of its own (block headers
and the DNA tables), independent of ``bat_core``, so that a mutation can aim
at what the reader trusts: block lengths and counts, DNA indexes, names,
types, struct layouts, pointers, and the compressed streams around it all.
Every mutator takes the file's bytes and a ``random.Random`` and returns new
bytes; none of them needs the input to be valid (a mutation that cannot find
its target returns the input with a few bits flipped instead).
"""

from __future__ import annotations

import gzip
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
#: Values a lying length, count or index likes to take.
HUGE = (0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 32, 1 << 40, (1 << 63) - 1, 1 << 63,
        (1 << 64) - 1)


# --- a small independent parser ----------------------------------------------------------


@dataclass
class Layout:
    header_size: int  # 12 or 17
    psize: int
    endian: str
    large: bool  # 17-byte header: 64-bit lengths, reordered block header

    @property
    def bhead(self) -> struct.Struct:
        if self.large:
            return struct.Struct("<4siQQq")  # code, sdna, old, len, count
        return struct.Struct(self.endian + ("4sIIii" if self.psize == 4 else "4sIQii"))

    def pack(self, code: bytes, length: int, old: int, sdna: int, count: int) -> bytes:
        """A block header; out-of-range values are wrapped to the field's width."""
        if self.large:
            return struct.pack("<4sIQQQ", code, sdna & 0xFFFFFFFF, old & (2**64 - 1), length & (2**64 - 1),
                               count & (2**64 - 1))
        ptr = "I" if self.psize == 4 else "Q"
        return struct.pack(self.endian + "4sI" + ptr + "II", code, length & 0xFFFFFFFF,
                           old & (2 ** (8 * self.psize) - 1), sdna & 0xFFFFFFFF, count & 0xFFFFFFFF)


@dataclass
class BHead:
    pos: int  # where the header starts
    code: bytes
    length: int
    old: int
    sdna: int
    count: int
    data: int  # where the data starts


def layout(buf: bytes) -> Layout | None:
    if buf[:7] != b"BLENDER" or len(buf) < 12:
        return None
    if buf[7:9] == b"17" and len(buf) >= 17:
        return Layout(17, 8, "<", True)
    psize = 4 if buf[7:8] == b"_" else 8
    return Layout(12, psize, ">" if buf[8:9] == b"V" else "<", False)


def blocks(buf: bytes, lay: Layout, limit: int = 100_000) -> list[BHead]:
    """The block headers up to ENDB or the first one that does not fit."""
    out: list[BHead] = []
    st = lay.bhead
    pos = lay.header_size
    while len(out) < limit and pos + st.size <= len(buf):
        if lay.large:
            code, sdna, old, length, count = st.unpack_from(buf, pos)
        else:
            code, length, old, sdna, count = st.unpack_from(buf, pos)
        out.append(BHead(pos, code, length, old, sdna, count, pos + st.size))
        if code == b"ENDB" or pos + st.size + length > len(buf):
            break
        pos += st.size + length
    return out


@dataclass
class DNATables:
    names: list[bytes]
    types: list[bytes]
    sizes: list[int]
    structs: list[tuple[int, list[tuple[int, int]]]]


def parse_dna(data: bytes, endian: str) -> DNATables | None:
    try:
        pos = 4  # SDNA
        tables: list[list[bytes]] = []
        for _tag in (b"NAME", b"TYPE"):
            (n,) = struct.unpack_from(endian + "i", data, pos + 4)
            pos += 8
            items = data[pos:].split(b"\0", n)[:n]
            pos += sum(len(i) + 1 for i in items)
            pos = (pos + 3) & ~3
            tables.append(items)
        names, types = tables
        sizes = list(struct.unpack_from(f"{endian}{len(types)}H", data, pos + 4))
        pos = (pos + 4 + 2 * len(types) + 3) & ~3
        (ns,) = struct.unpack_from(endian + "i", data, pos + 4)
        pos += 8
        structs = []
        for _ in range(ns):
            t, nf = struct.unpack_from(endian + "HH", data, pos)
            flat = struct.unpack_from(f"{endian}{2 * nf}H", data, pos + 4)
            structs.append((t, list(zip(flat[0::2], flat[1::2], strict=True))))
            pos += 4 + 4 * nf
        return DNATables(names, types, sizes, structs)
    except (struct.error, ValueError):
        return None


def build_dna(t: DNATables, endian: str) -> bytes:
    def strings(tag: bytes, items: list[bytes]) -> bytes:
        body = tag + struct.pack(endian + "i", len(items)) + b"".join(i + b"\0" for i in items)
        return body + bytes(-len(body) % 4)

    out = b"SDNA" + strings(b"NAME", t.names) + strings(b"TYPE", t.types)
    tlen = b"TLEN" + struct.pack(f"{endian}{len(t.sizes)}H", *(s & 0xFFFF for s in t.sizes))
    out += tlen + bytes(-len(tlen) % 4)
    out += b"STRC" + struct.pack(endian + "i", len(t.structs))
    for type_idx, members in t.structs:
        out += struct.pack(endian + "HH", type_idx & 0xFFFF, len(members))
        out += b"".join(struct.pack(endian + "HH", a & 0xFFFF, b & 0xFFFF) for a, b in members)
    return out


def replace_block(buf: bytes, lay: Layout, blk: BHead, data: bytes) -> bytes:
    """The file with one block's data replaced and its header's length set to match."""
    header = lay.pack(blk.code, len(data), blk.old, blk.sdna, blk.count)
    return buf[: blk.pos] + header + data + buf[blk.data + blk.length :]


# --- compression -------------------------------------------------------------------------


def decompress(data: bytes) -> tuple[bytes, str]:
    """(plain bytes, what it was compressed with); the input itself when it is not."""
    try:
        if data.startswith(ZSTD_MAGIC):
            return zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read(), "zstd"
        if data.startswith(GZIP_MAGIC):
            return gzip.decompress(data), "gzip"
    except (zstandard.ZstdError, OSError, EOFError, zlib.error):
        pass
    return data, "none"


def zstd_seekable(data: bytes, frame: int = 1 << 20, level: int = 1) -> bytes:
    """zstd in Blender's seekable format: frames, then a skippable seek-table frame."""
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    out, table = [], []
    for i in range(0, len(data), frame):
        f = cctx.compress(data[i : i + frame])
        out.append(f)
        table.append(struct.pack("<II", len(f), len(data[i : i + frame])))
    body = b"".join(table) + struct.pack("<IBI", len(table), 0, 0x8F92EAB1)
    return b"".join(out) + struct.pack("<II", 0x184D2A5E, len(body)) + body


def compress(data: bytes, kind: str) -> bytes:
    if kind == "zstd":
        return zstd_seekable(data)
    if kind == "gzip":
        return gzip.compress(data, 1, mtime=0)
    return data


# --- mutators on plain bytes -------------------------------------------------------------

Mutator = Callable[[bytes, random.Random], bytes]


def flip_bits(buf: bytes, rng: random.Random, n: int = 0) -> bytes:
    if not buf:
        return buf
    out = bytearray(buf)
    for _ in range(n or rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def random_bytes(buf: bytes, rng: random.Random) -> bytes:
    """Overwrite a short run with random or boundary bytes."""
    if not buf:
        return buf
    i = rng.randrange(len(buf))
    n = rng.randint(1, 16)
    fill = rng.choice([bytes(rng.randrange(256) for _ in range(n)), b"\xff" * n, b"\x00" * n, b"\x7f" * n])
    return buf[:i] + fill + buf[i + n :]


def truncate(buf: bytes, rng: random.Random) -> bytes:
    lay = layout(buf)
    if lay is not None and rng.random() < 0.6:
        heads = blocks(buf, lay)
        if heads:
            blk = rng.choice(heads)
            # At a header, inside a header, inside the data.
            cut = rng.choice([blk.pos, blk.pos + rng.randrange(1, lay.bhead.size), blk.data + blk.length // 2])
            return buf[:cut]
    return buf[: rng.randrange(len(buf) + 1)]


def splice(buf: bytes, rng: random.Random) -> bytes:
    """Insert, delete or duplicate a run of bytes (shifts everything after it)."""
    if not buf:
        return buf
    i = rng.randrange(len(buf))
    n = rng.choice([1, 2, 4, 8, rng.randint(1, 512)])
    op = rng.randrange(3)
    if op == 0:
        return buf[:i] + buf[i + n :]
    if op == 1:
        return buf[:i] + bytes(rng.randrange(256) for _ in range(n)) + buf[i:]
    j = rng.randrange(len(buf))
    return buf[:i] + buf[j : j + n] + buf[i:]


def _pick(buf: bytes, rng: random.Random, code: bytes | None = None) -> tuple[Layout, list[BHead], BHead] | None:
    lay = layout(buf)
    if lay is None:
        return None
    heads = [h for h in blocks(buf, lay) if h.code != b"ENDB"]
    if code is not None:
        heads = [h for h in heads if h.code == code] or heads
    if not heads:
        return None
    return lay, heads, rng.choice(heads)


def _set_header(buf: bytes, lay: Layout, blk: BHead, **changes: int | bytes) -> bytes:
    values = {"code": blk.code, "length": blk.length, "old": blk.old, "sdna": blk.sdna, "count": blk.count}
    values.update(changes)
    header = lay.pack(values["code"], values["length"], values["old"], values["sdna"], values["count"])  # type: ignore[arg-type]
    return buf[: blk.pos] + header + buf[blk.data :]


def lie_length(buf: bytes, rng: random.Random) -> bytes:
    picked = _pick(buf, rng)
    if picked is None:
        return flip_bits(buf, rng)
    lay, _, blk = picked
    length = rng.choice([0, 1, blk.length - 1, blk.length + 1, blk.length + 4, blk.length * 2,
                         len(buf), len(buf) - blk.data, -1, -blk.length, *HUGE])
    return _set_header(buf, lay, blk, length=length)


def lie_count(buf: bytes, rng: random.Random) -> bytes:
    picked = _pick(buf, rng)
    if picked is None:
        return flip_bits(buf, rng)
    lay, _, blk = picked
    count = rng.choice([0, -1, 2, blk.count + 1, blk.count * 1000, -(1 << 31), *HUGE])
    return _set_header(buf, lay, blk, count=count)


def lie_sdna(buf: bytes, rng: random.Random) -> bytes:
    """Negative, huge, or another real struct (type confusion)."""
    picked = _pick(buf, rng)
    if picked is None:
        return flip_bits(buf, rng)
    lay, heads, blk = picked
    other = rng.choice(heads)
    sdna = rng.choice([-1, -2, 0, 1 << 15, 0xFFFF, 1 << 31, 0x7FFFFFFF, other.sdna, blk.sdna + 1,
                       rng.randrange(1000)])
    return _set_header(buf, lay, blk, sdna=sdna)


def lie_code(buf: bytes, rng: random.Random) -> bytes:
    picked = _pick(buf, rng)
    if picked is None:
        return flip_bits(buf, rng)
    lay, _, blk = picked
    code = rng.choice([b"DATA", b"ENDB", b"DNA1", b"ID\0\0", b"LI\0\0", b"OB\0\0", b"IM\0\0", b"TX\0\0",
                       b"GLOB", b"REND", b"TEST", b"\xff\xff\xff\xff", b"\0\0\0\0"])
    return _set_header(buf, lay, blk, code=code)


def lie_address(buf: bytes, rng: random.Random) -> bytes:
    """Two blocks at one address, a block at address 0, or at an unaligned one."""
    picked = _pick(buf, rng)
    if picked is None:
        return flip_bits(buf, rng)
    lay, heads, blk = picked
    return _set_header(buf, lay, blk, old=rng.choice([rng.choice(heads).old, 0, blk.old + 1, 1 << 63]))


def duplicate_block(buf: bytes, rng: random.Random) -> bytes:
    """A block (often DNA1 or an ID) written twice, or an early ENDB."""
    picked = _pick(buf, rng, rng.choice([b"DNA1", None, None]))
    if picked is None:
        return flip_bits(buf, rng)
    lay, heads, blk = picked
    whole = buf[blk.pos : blk.data + blk.length]
    at = rng.choice(heads).pos
    if rng.random() < 0.2:
        whole = lay.pack(b"ENDB", 0, 0, 0, 0)
    return buf[:at] + whole + buf[at:]


def _pointer_sites(buf: bytes, lay: Layout, heads: list[BHead]) -> list[int]:
    """Offsets (aligned, inside block data) of values that are the address of some block."""
    addrs = {h.old for h in heads if h.old}
    fmt = lay.endian + ("Q" if lay.psize == 8 else "I")
    sites = []
    for h in heads:
        if h.code == b"DNA1":
            continue
        end = min(h.data + h.length, len(buf))
        for off in range(h.data, end - lay.psize + 1, lay.psize):
            if struct.unpack_from(fmt, buf, off)[0] in addrs:
                sites.append(off)
    return sites


def redirect_pointer(buf: bytes, rng: random.Random) -> bytes:
    """Point a real pointer at itself (a loop), at its holder, at a block of another
    type, into the middle of a block, or at nothing."""
    lay = layout(buf)
    if lay is None:
        return flip_bits(buf, rng)
    heads = [h for h in blocks(buf, lay) if h.code != b"ENDB"]
    sites = _pointer_sites(buf, lay, heads)
    if not sites:
        return flip_bits(buf, rng)
    out = bytearray(buf)
    fmt = lay.endian + ("Q" if lay.psize == 8 else "I")
    for _ in range(rng.randint(1, 3)):
        site = rng.choice(sites)
        holder = next(h for h in heads if h.data <= site < h.data + h.length)
        target = rng.choice([holder.old, rng.choice(heads).old, rng.choice(heads).old + 8, 0xDEADBEEF, 1,
                             struct.unpack_from(fmt, out, rng.choice(sites))[0]])
        struct.pack_into(fmt, out, site, target & (2 ** (8 * lay.psize) - 1))
    return bytes(out)


def _with_dna(buf: bytes, rng: random.Random, change: Callable[[DNATables, random.Random], None]) -> bytes:
    lay = layout(buf)
    if lay is None:
        return flip_bits(buf, rng)
    dna = [h for h in blocks(buf, lay) if h.code == b"DNA1"]
    if not dna:
        return flip_bits(buf, rng)
    blk = dna[-1]
    tables = parse_dna(buf[blk.data : blk.data + blk.length], lay.endian)
    if tables is None or not tables.structs:
        return flip_bits(buf, rng)
    change(tables, rng)
    return replace_block(buf, lay, blk, build_dna(tables, lay.endian))


def _dna_names(t: DNATables, rng: random.Random) -> None:
    i = rng.randrange(len(t.names))
    name = t.names[i]
    t.names[i] = rng.choice([
        name + b"[999999999]", name + b"[0]", name + b"[4294967296]", name + b"[" + b"9" * 5000 + b"]",
        name + b"[2][3]" * 50, b"*" + name, b"(*" + name + b")()", name.lstrip(b"*"), b"", b"[",
        name.replace(b"[", b"]"), "nämé".encode(), name + b"\xff", b"*" * 100, b"x" * 70000,
    ])


def _dna_types(t: DNATables, rng: random.Random) -> None:
    i = rng.randrange(len(t.types))
    choice = rng.randrange(4)
    if choice == 0:
        t.types[i] = rng.choice([b"", b"char", b"ID", b"Object", b"\xfe\xff", t.types[rng.randrange(len(t.types))]])
    elif choice == 1:
        t.sizes[i] = rng.choice([0, 1, 0xFFFF, 0x8000, t.sizes[i] + 1, t.sizes[i] - 1])
    elif choice == 2:
        del t.types[i]
    else:
        t.sizes.pop()


def _dna_structs(t: DNATables, rng: random.Random) -> None:
    si = rng.randrange(len(t.structs))
    type_idx, members = t.structs[si]
    op = rng.randrange(8)
    if op == 0 and members:  # a member of another type or name (sizes no longer add up, or still do)
        m = rng.randrange(len(members))
        members[m] = (rng.randrange(len(t.types) + 2), members[m][1])
    elif op == 1 and members:
        m = rng.randrange(len(members))
        members[m] = (members[m][0], rng.choice([rng.randrange(len(t.names)), len(t.names), 0xFFFF]))
    elif op == 2:  # the struct contains itself (sizes made to add up)
        own = rng.choice([type_idx, t.structs[rng.randrange(len(t.structs))][0]])
        members.append((own, rng.randrange(len(t.names))))
    elif op == 3:  # two structs for one type
        t.structs[si] = (t.structs[rng.randrange(len(t.structs))][0], members)
    elif op == 4:
        t.structs[si] = (rng.choice([len(t.types), 0xFFFF, 0]), members)
    elif op == 5 and members:
        del members[rng.randrange(len(members))]
    elif op == 6:
        del t.structs[si:]
    else:  # the struct's size lies
        t.sizes[type_idx % len(t.sizes)] = rng.choice([0, 1, 0xFFFF, t.sizes[type_idx % len(t.sizes)] + 8])


def corrupt_dna(buf: bytes, rng: random.Random) -> bytes:
    return _with_dna(buf, rng, rng.choice([_dna_names, _dna_types, _dna_structs]))


def huge_dims(buf: bytes, rng: random.Random) -> bytes:
    """``name[4]`` -> ``name[999999999]`` with the struct's size made to match when it can."""

    def change(t: DNATables, rng: random.Random) -> None:
        arrays = [i for i, n in enumerate(t.names) if b"[" in n]
        if not arrays:
            return
        i = rng.choice(arrays)
        t.names[i] = t.names[i].split(b"[", 1)[0] + rng.choice([b"[999999999]", b"[65536]", b"[1073741824]",
                                                                   b"[99999][99999]", b"[0]"])

    return _with_dna(buf, rng, change)


_HOSTILE_PATHS = [b"", b"//", b"//.", b"//..", b"//../seeds", b"//textures", b"//textures/", b"//<UDIM>",
                  b"//textures/seq/f_####.png", b"//a/" * 300, b"//" + b"x" * 4000, b"\xff\xfe//bad.png",
                  b"C:\\textures\\a.png", b"\\\\server\\share\\a.png", b"//textures/udim/t.<UDIM>.png",
                  b"//lib-v50.blend", b"//lib-v42.blend", b"//input.blend", b"//scripts/tool.py"]


def mutate_path(buf: bytes, rng: random.Random) -> bytes:
    """Replace a stored ``//`` path (in place, NUL-padded or cut to the old length, or
    without its NUL: the string then runs on into whatever follows)."""
    starts = [i for i in range(len(buf) - 2) if buf[i : i + 2] == b"//" and (i == 0 or buf[i - 1] == 0)]
    if not starts:
        return flip_bits(buf, rng)
    i = rng.choice(starts)
    end = buf.find(b"\0", i)
    end = len(buf) if end < 0 else end
    new = rng.choice(_HOSTILE_PATHS)
    if rng.random() < 0.2:  # drop the terminating NUL
        return buf[:i] + (new + b"x" * (end - i + 1))[: end - i + 1] + buf[end + 1 :]
    new = new[: end - i].ljust(end - i, b"\0")
    return buf[:i] + new + buf[end:]


#: Weighted towards mutations that leave the file readable enough to reach the tracer
#: and the packer (a lying DNA or length mostly ends at open, which few inputs prove).
STRUCTURE: list[Mutator] = [lie_length, lie_count, lie_count, lie_sdna, lie_sdna, lie_code, lie_address,
                            duplicate_block, redirect_pointer, redirect_pointer, redirect_pointer, corrupt_dna,
                            huge_dims, mutate_path, mutate_path, truncate]
BYTES: list[Mutator] = [flip_bits, random_bytes, splice, truncate]


# --- mutators of compressed streams ------------------------------------------------------


def mutate_zstd(plain: bytes, rng: random.Random) -> bytes:
    """A zstd file with a damaged frame, seek table or frame header."""
    data = zstd_seekable(plain, frame=rng.choice([1 << 20, 1 << 16, 4096]))
    op = rng.randrange(6) if rng.random() < 0.4 else rng.randrange(5)  # bombs are slow: fewer of them
    if op == 0:  # a seek table claiming far more than is there
        n = struct.unpack_from("<I", data, len(data) - 9)[0]
        table_start = len(data) - 9 - 8 * n
        out = bytearray(data)
        struct.pack_into("<I", out, table_start + 4, rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0]))
        if rng.random() < 0.5:
            struct.pack_into("<I", out, len(out) - 9, rng.choice([0xFFFFFFFF, n + 1, 0]))
        return bytes(out)
    if op == 1:  # a frame header claiming a huge content size (8-byte field)
        cctx = zstandard.ZstdCompressor(level=1, write_content_size=True)
        frame = bytearray(cctx.compress(plain[:4096]))
        fhd = frame[4]
        if fhd >> 6 == 3:  # 8-byte content size present
            off = 5 + (0 if fhd & 0x20 else 1)
            struct.pack_into("<Q", frame, off, rng.choice([1 << 32, 1 << 40, (1 << 64) - 1]))
        return bytes(frame) + data
    if op == 2:
        return data[: rng.randrange(len(data))]
    if op == 3:
        return flip_bits(data, rng, rng.randint(1, 4))
    if op == 4:  # garbage after the frames, or a stream of only skippable frames
        return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    # a bomb: a tiny stream of a very large run of zeros, then a blend header
    cctx = zstandard.ZstdCompressor(level=1)
    zeros = cctx.compressobj()
    out = zeros.compress(plain[:64])
    chunk = bytes(1 << 20)
    for _ in range(rng.choice([8, 80])):  # 80 MiB: past the 64 MiB floor of the limit
        out += zeros.compress(chunk)
    return out + zeros.flush()


def mutate_gzip(plain: bytes, rng: random.Random) -> bytes:
    data = gzip.compress(plain, 1, mtime=0)
    op = rng.randrange(5) if rng.random() < 0.4 else rng.randrange(4)
    if op == 0:
        return data[: rng.randrange(len(data))]
    if op == 1:
        return flip_bits(data, rng, rng.randint(1, 4))
    if op == 2:  # a wrong CRC or size in the trailer
        return data[:-8] + bytes(rng.randrange(256) for _ in range(8))
    if op == 3:  # trailing garbage after the member
        return data + b"\x1f\x8b" + bytes(rng.randrange(256) for _ in range(20))
    bomb = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = bomb.compress(plain[:64])
    chunk = bytes(1 << 20)
    for _ in range(rng.choice([8, 80])):
        out += bomb.compress(chunk)
    return out + bomb.flush()


# --- the whole mutation ----------------------------------------------------------------


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One fuzz input from ``data`` (a seed or an earlier input): a few mutations of the
    plain file, written plain or compressed again, sometimes with the compressed
    stream itself damaged."""
    plain, kind = decompress(data)
    roll = rng.random()
    if roll < 0.12:
        return mutate_zstd(plain, rng) if rng.random() < 0.6 else mutate_gzip(plain, rng)
    out = plain
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        out = rng.choice(STRUCTURE if rng.random() < 0.75 else BYTES)(out, rng)
    if rng.random() < 0.25:
        out = flip_bits(out, rng, rng.randint(1, 3))
    # Keep the seed's compression now and then, so decompression is exercised too.
    if kind != "none" and rng.random() < 0.3:
        out = compress(out, kind)
    elif rng.random() < 0.05:
        out = compress(out, rng.choice(["zstd", "gzip"]))
    return out
