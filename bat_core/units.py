"""Sizes as people read them, the same in every message bat prints."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """``329323`` -> ``329.3 kB`` (decimal units, as file managers and ``ls -h --si`` show them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
