"""``bat blocks``: what a blend file is made of, by DNA type."""

from __future__ import annotations

import json
import logging
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from ..blendfile import BlendFile, Block, Struct, open_blend
from .common import check_blendfile, set_json, state

log = logging.getLogger("bat_core.cli")


def _type_name(block: Block) -> str:
    return block.dna_type_name


def block_stats(bf: BlendFile) -> dict[str, Any]:
    """Per-DNA-type totals and per-code counts, the data behind ``bat blocks``."""
    sizes: dict[str, list[int]] = defaultdict(list)
    codes_by_type: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    codes: dict[str, int] = defaultdict(int)
    for blk in bf.blocks:
        name = _type_name(blk)
        code = blk.code.decode("ascii", "replace")
        sizes[name].append(blk.size)
        codes_by_type[name][code] += 1
        codes[code] += 1
    types: list[dict[str, Any]] = []
    for name, lst in sizes.items():
        total = sum(lst)
        types.append({
            "type": name,
            "codes": dict(sorted(codes_by_type[name].items())),
            "count": len(lst),
            "total_size": total,
            "average_size": total / len(lst),
            "median_size": statistics.median(lst),
        })
    types.sort(key=lambda t: (-t["total_size"], t["type"]))
    return {
        "file": str(bf.path),
        "blender_version": bf.version,
        "header": bf.header.raw.decode("ascii", "replace"),
        "compression": bf.compression.value,
        "pointer_size": bf.header.pointer_size,
        "endian": "little" if bf.header.endian == "<" else "big",
        "block_count": len(bf.blocks),
        "total_size": sum(b.size for b in bf.blocks),
        "codes": dict(sorted(codes.items())),
        "types": types,
    }


def _pointer_offsets(st: Struct, cache: dict[int, list[int]]) -> list[int]:
    """Offsets of every pointer in a struct, nested structs included."""
    if st.index in cache:
        return cache[st.index]
    out: list[int] = []
    psize = st.dna.pointer_size
    for f in st.fields:
        if f.is_pointer:
            out.extend(f.offset + i * psize for i in range(f.count))
        elif f.struct is not None:
            inner = _pointer_offsets(f.struct, cache)
            for i in range(f.count):
                out.extend(f.offset + i * f.struct.size + o for o in inner)
    cache[st.index] = out
    return out


def referrers(bf: BlendFile, target: Block) -> list[Block]:
    """Blocks holding a pointer to ``target`` (slow: for debugging only)."""
    import struct as _struct

    fmt = _struct.Struct(bf.header.pointer_format)
    cache: dict[int, list[int]] = {}
    found = []
    for blk in bf.blocks:
        if blk is target or (blk.sdna_index == 0 and blk.code == b"DATA"):
            continue
        st = blk.dna_type
        offsets = _pointer_offsets(st, cache)
        hit = False
        for i in range(blk.count):
            base = blk.offset + i * st.size
            if base + st.size > blk.offset + blk.size:
                break
            if any(fmt.unpack_from(bf.buf, base + o)[0] == target.addr_old for o in offsets):
                hit = True
                break
        if hit:
            found.append(blk)
    return found


def hexdump(data: bytes, width: int = 16) -> str:
    lines = []
    for pos in range(0, len(data), width):
        chunk = data[pos : pos + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{pos:08x}  {hexpart:<{width * 3}} {text}")
    return "\n".join(lines)


def _describe(blk: Block) -> str:
    name = blk.id_name if blk.code not in (b"DATA",) and blk.dna_type.has_field(b"id") else b""
    label = f" {name.decode('utf-8', 'replace')}" if name else ""
    return f"{blk.code.decode('ascii', 'replace')} {blk.dna_type_name}{label} (0x{blk.addr_old:x}, {blk.size} bytes)"


@click.command()
@click.argument("blendfile", type=click.Path(path_type=Path))
@click.option("-l", "--limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many DNA types to show, biggest first.")
@click.option("-d", "--dump", is_flag=True, help="Hex-dump the biggest block and show which blocks point to it.")
@click.option("--dump-bytes", type=click.IntRange(min=16), default=512, show_default=True,
              help="How many bytes of the block --dump shows.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (all types).")
@click.pass_context
def blocks(ctx: click.Context, blendfile: Path, limit: int, dump: bool, dump_bytes: int, as_json: bool) -> None:
    """Show the blocks of BLENDFILE per DNA type: total size, count, average and median size.

    Exit status: 0 done, 1 error (not a readable blend file), 2 bad usage.
    """
    set_json(as_json)
    check_blendfile(blendfile)
    log.info("opening %s", blendfile)
    with open_blend(blendfile, strict_pointers=state(ctx).strict_pointers) as bf:
        log.debug("%s: Blender %s, %s, %d-byte pointers", blendfile, bf.version, bf.compression.value,
                  bf.header.pointer_size)
        stats = block_stats(bf)
        data_blocks = [b for b in bf.blocks if b.code != b"DNA1"]
        biggest = max(data_blocks, key=lambda b: b.size) if data_blocks else None
        if dump and biggest is not None:
            stats["biggest_block"] = {
                "description": _describe(biggest),
                "referrers": [_describe(b) for b in referrers(bf, biggest)],
            }
        if as_json:
            click.echo(json.dumps(stats, indent=2))
            return
        click.echo(f"{stats['file']}: Blender {stats['blender_version']}, {stats['compression']}, "
                   f"{stats['block_count']} blocks, {stats['total_size']} bytes")
        click.echo(f"{'type':<28} {'total':>12} {'count':>8} {'average':>10} {'median':>10}")
        for t in stats["types"][:limit]:
            click.echo(f"{t['type']:<28} {t['total_size']:>12} {t['count']:>8} "
                       f"{t['average_size']:>10.0f} {t['median_size']:>10.0f}")
        if len(stats["types"]) > limit:
            click.echo(f"... {len(stats['types']) - limit} more types (--limit)")
        if dump and biggest is not None:
            click.echo(f"\nbiggest block: {stats['biggest_block']['description']}")
            click.echo(hexdump(bf.buf[biggest.offset : biggest.offset + min(biggest.size, dump_bytes)]))
            if biggest.size > dump_bytes:
                click.echo(f"... {biggest.size - dump_bytes} more bytes")
            refs = stats["biggest_block"]["referrers"]
            click.echo(f"pointed at by {len(refs)} block(s):")
            for r in refs:
                click.echo(f"  {r}")
