"""Helpers for the fault tests: hashes and leftovers of a tree, bat in a subprocess, a small disk.

Run as a script (``python packfaults.py STEPS REPORT``) it is the driver of
:func:`run_on_small_disk`: inside a private mount namespace where a tmpfs is
mounted, it runs the steps (commands, remounts, snapshots of a directory) and
writes what happened to REPORT as JSON, since the mount is gone once it exits.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

STATE_DIR = ".bat-pack"


def hashes(root: Path, *, hidden: bool = True) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and (hidden or not rel.startswith(STATE_DIR + "/")):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".partial")]


def empty_dirs(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_dir() and not p.is_symlink() and not any(p.iterdir())]


def bat(*args: str) -> list[str]:
    return [sys.executable, "-m", "bat_core", *args]


def no_dac_override() -> list[str] | None:
    """A command prefix under which file permissions apply: nothing for a user, setpriv for root.

    None when running as root without ``setpriv`` (the permission tests skip).
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@functools.cache
def _mount_namespace() -> tuple[list[str] | None, str]:
    """The ``unshare`` prefix that lets this user mount a tmpfs privately, or None and why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "unshare (util-linux) is not installed"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"bat-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        errors = []
        for prefix in ([[unshare, "-m"]] if os.geteuid() == 0 else []) + [[unshare, "-rm"]]:
            res = subprocess.run([*prefix, "sh", "-c", 'mount -t tmpfs -o size=64k bat-probe "$1"', "sh",
                                  str(probe)], capture_output=True, text=True, timeout=30)
            if res.returncode == 0:
                return prefix, ""
            errors.append(" ".join(res.stderr.split()))
        return None, f"cannot mount a tmpfs here (needs root or user namespaces): {'; '.join(errors)}"
    finally:
        probe.rmdir()


def run_on_small_disk(mountpoint: Path, size_kib: int, steps: list[dict[str, Any]],
                      workdir: Path) -> list[dict[str, Any]]:
    """Run ``steps`` with a tmpfs of ``size_kib`` KiB mounted at ``mountpoint`` (private to them).

    Steps: ``{"run": argv}`` (records ``code``, ``stderr``), ``{"remount": kib}``,
    ``{"snapshot": dir}`` (records ``files``: relative path -> SHA-256, hidden
    files included, and ``names`` beside it), ``{"zip": file}`` (its entries'
    SHA-256, ``testzip``, the comment).  Skips the test when no tmpfs can be mounted.
    """
    import pytest

    prefix, why = _mount_namespace()
    if prefix is None:
        pytest.skip(why)
    mountpoint.mkdir(parents=True, exist_ok=True)
    steps_file, report = workdir / "steps.json", workdir / "report.json"
    steps_file.write_text(json.dumps(steps))
    script = 'mount -t tmpfs -o size="$1"k bat-test "$2" && exec "$3" "$4" "$5" "$6"'
    res = subprocess.run([*prefix, "sh", "-c", script, "sh", str(size_kib), str(mountpoint), sys.executable,
                          __file__, str(steps_file), str(report)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    records: list[dict[str, Any]] = json.loads(report.read_text())
    return records


def _drive(steps_file: Path, report: Path) -> None:
    records: list[dict[str, Any]] = []
    for step in json.loads(steps_file.read_text()):
        if "run" in step:
            res = subprocess.run(step["run"], capture_output=True, text=True, timeout=60)
            records.append({"code": res.returncode, "stderr": res.stderr})
        elif "remount" in step:
            mnt = step["mountpoint"]
            subprocess.run(["mount", "-o", f"remount,size={step['remount']}k", mnt], check=True)
            records.append({})
        elif "snapshot" in step:
            where = Path(step["snapshot"])
            records.append({"files": hashes(where) if where.is_dir() else {},
                            "exists": where.exists(),
                            "names": sorted(p.name for p in where.parent.iterdir())})
        elif "zip" in step:
            records.append(_zip_record(Path(step["zip"])))
    report.write_text(json.dumps(records))


def _zip_record(path: Path) -> dict[str, Any]:
    import zipfile

    if not path.exists():
        return {"exists": False}
    with zipfile.ZipFile(path) as zf:
        return {"exists": True, "bad": zf.testzip(), "comment": zf.comment.decode("utf-8", "replace"),
                "files": {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}}


if __name__ == "__main__":
    _drive(Path(sys.argv[1]), Path(sys.argv[2]))
