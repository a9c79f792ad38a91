"""Hostile paths, end to end: a Blender-made file whose paths try everything, packed for real.

``proj/shot/main.blend`` (``tests/data/gen_paths.py``, scenario ``hostile``)
stores traversals to ``/etc/passwd``, kernel files (``/proc/self/environ``,
``/dev/zero``, ``/dev/stdin``, ``/sys/...``), a name over 255 bytes, a deep
path, control characters, two names differing only by case, a path hidden
behind a NUL, a FIFO, a symlink loop, a path through a file, and cache
directories holding FIFOs, sockets and links; it links ``a.blend`` <->
``b.blend`` and ``self.blend``, which links itself.

For each pack: nothing is written outside the target, no source or unrelated
file changes (hashes before and after), bat's environment (what
``/proc/self/environ`` would leak) is in no packed file, and Blender opens
the packed file and finds every file it found before inside the pack.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bat_core.pack import PackError, pack

from .blender_probe import blender_report, needs_bpy
from .hostile_setup import make_hostile

SECRET = "bat-hostile-secret-41d2"


def _hashes(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink() or not p.is_file():
            out[str(p)] = "link" if p.is_symlink() else "dir" if p.is_dir() else "special"
            continue
        out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _system_hashes() -> dict[str, str]:
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in ("/etc/passwd", "/etc/hostname")
            if os.path.isfile(p)}


def _pack_cli(proj: Path, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    main = proj / "shot" / "main.blend"
    env = {**os.environ, "BAT_HOSTILE": SECRET}
    return subprocess.run([sys.executable, "-m", "bat_core", "pack", "-p", str(proj), *extra, str(main), str(target)],
                          capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(project, an unrelated sibling directory that must not change)."""
    proj = make_hostile(tmp_path / "src")
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    (unrelated / "keep.txt").write_text("do not touch")
    return proj, unrelated


@pytest.mark.parametrize("kind", ["dir", "zip"])
def test_hostile_pack_stays_inside_its_target(layout: tuple[Path, Path], tmp_path: Path, kind: str) -> None:
    proj, unrelated = layout
    before_src = _hashes(proj.parent)
    before_other = _hashes(unrelated)
    before_sys = _system_hashes()
    before_top = sorted(os.listdir(tmp_path))
    target = tmp_path / ("out.zip" if kind == "zip" else "out")
    # A ZIP file refuses names that differ only in case (test_case_collisions_refused_before_writing):
    # leave one of them out, so the rest of the hostile layout is packed into the ZIP file.
    proc = _pack_cli(proj, target, *(["-e", "*/Case.png"] if kind == "zip" else []))
    assert proc.returncode == 3, proc.stderr[-3000:]  # missing and refused files, reported
    assert "Traceback" not in proc.stderr
    assert _hashes(proj.parent) == before_src
    assert _hashes(unrelated) == before_other
    assert _system_hashes() == before_sys
    assert sorted(os.listdir(tmp_path)) == sorted([*before_top, target.name])
    if kind == "zip":
        with zipfile.ZipFile(target) as zf:
            names = zf.namelist()
            assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)
            contents = [zf.read(n) for n in names if not n.endswith("/")]
    else:
        files = [p for p in target.rglob("*") if p.is_file()]
        assert all(p.resolve().is_relative_to(target.resolve()) for p in files)
        contents = [p.read_bytes() for p in files]
    assert contents
    assert not any(SECRET.encode() in c for c in contents)  # /proc/self/environ was not read


def test_hostile_pack_refuses_kernel_and_special_files(layout: tuple[Path, Path], tmp_path: Path) -> None:
    proj, _ = layout
    result = pack(proj / "shot" / "main.blend", str(tmp_path / "out"), project=proj)
    sources = [str(f.source) for f in result.files]
    assert not any(s.startswith(("/proc/", "/sys/", "/dev/")) for s in sources)
    reasons = {m.shown: m.reason for m in result.missing}
    assert reasons["/proc/self/environ"] == "on a kernel file system"
    assert reasons["/dev/zero"] == "on a kernel file system"
    assert reasons[str(proj / "shot" / "tex" / "fifo.png")] == "not a regular file (a FIFO)"
    # What was left behind the NUL in the field is never read as a path.
    assert not any("x" * 200 in s for s in [*sources, *reasons])
    packed = {f.relpath for f in result.files}
    assert "shot/tex/ok.png" in packed
    assert "_outside_project/etc/passwd" in packed  # a regular file: packed, as BAT 1.x does
    # The library that links itself is packed once; b.blend (which a.blend links, and
    # which links a.blend back) holds nothing main.blend uses, so Blender does not load it.
    libs = sorted(r for r in packed if r and r.endswith(".blend"))
    assert libs == ["libs/a.blend", "libs/self.blend", "shot/main.blend"]


@needs_bpy
def test_blender_finds_every_file_inside_the_pack(layout: tuple[Path, Path], tmp_path: Path) -> None:
    proj, _ = layout
    out = tmp_path / "out"
    proc = _pack_cli(proj, out)
    assert proc.returncode == 3, proc.stderr[-3000:]
    packed = out / "shot" / "main.blend"
    # Only the pack is opened: Blender itself would block reading the source's FIFO.
    after = blender_report([packed], tmp_path)[str(packed)]
    assert after["libraries"] and all(lib["found"] for lib in after["libraries"].values())
    found_after = {name for name, img in after["images"].items() if img["size"][0]}
    assert found_after >= {"Deep", "Control", "CaseUpper", "CaseLower", "AfterNul"}
    for path in after["blend_paths"]:
        real = os.path.realpath(path)
        if os.path.exists(real) and not real.startswith(("/proc/", "/sys/", "/dev/")):
            assert Path(real).is_relative_to(out.resolve()), path


def test_case_collisions_refused_before_writing(layout: tuple[Path, Path], tmp_path: Path) -> None:
    """A Windows or macOS farm would merge tex/Case.png and tex/case.png: the plan says so first."""
    proj, _ = layout
    with pytest.raises(PackError, match="case") as err:
        pack(proj / "shot" / "main.blend", str(tmp_path / "out.zip"), project=proj)
    assert "Case.png" in str(err.value) and "case.png" in str(err.value)
    assert not (tmp_path / "out.zip").exists()
