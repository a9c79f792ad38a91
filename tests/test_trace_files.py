"""File-system faults and special files behind stored paths: reported, never a traceback,
never read.  Blend files from the ``hostile`` fixture, files laid out by ``hostile_setup``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bat_core.pack import pack
from bat_core.trace import problems, trace
from bat_core.trace.files import FileProbe

from .hostile_setup import make_hostile


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return make_hostile(tmp_path)


def _by_name(main: Path) -> dict[str, list]:  # type: ignore[type-arg]
    out: dict[str, list] = {}  # type: ignore[type-arg]
    for u in trace(main):
        out.setdefault(u.block_name[2:].decode("utf-8", "replace"), []).append(u)
    return out


def test_errno_cases_become_problems(proj: Path) -> None:
    """ENAMETOOLONG, ELOOP and ENOTDIR on paths from the file: reasons, not exceptions."""
    usages = _by_name(proj / "shot" / "main.blend")
    assert usages["LongName"][0].problem == "missing (file name too long)"
    assert usages["Loop"][0].problem == "unreadable (too many levels of symbolic links)"
    assert usages["NotDir"][0].problem == "missing (not a directory)"
    assert usages["Deep"][0].files  # ~860 bytes deep, but it exists: found


def test_special_files_are_problems_and_never_dependencies(proj: Path) -> None:
    usages = _by_name(proj / "shot" / "main.blend")
    for name in ("ProcEnviron", "DevZero", "DevStdin", "SysFile"):
        (u,) = usages[name]
        assert not u.files and u.problem == "on a kernel file system", (name, u.problem)
    (fifo,) = usages["Fifo"]
    assert fifo.problem == "not a regular file (a FIFO)"


def test_cache_directories_keep_only_regular_files(proj: Path) -> None:
    usages = _by_name(proj / "shot" / "main.blend")
    (ocean,) = usages["Ocean"]
    assert [f.name for f in ocean.files] == ["disp_0001.exr"]
    left_out = {p.name: why for p, why in ocean.skipped}
    assert left_out["foam_0001.exr"] == "not a regular file (a FIFO)"
    assert left_out["normal_0001.exr"] == "missing (dangling symbolic link)"
    assert left_out["spray_0001.exr"] == "on a kernel file system"
    if "disp_0002.exr" in left_out:
        assert left_out["disp_0002.exr"] == "not a regular file (a socket)"
    assert not ocean.problem  # the directory is there: what is in it is what it is
    (fluid,) = usages["FluidDomain"]
    assert [f.name for f in fluid.files] == ["fluid_0001.vdb"]
    assert {p.name for p, _ in fluid.skipped} >= {"fifo_0001.vdb", "gone.vdb", "environ.vdb"}


def test_probe_refuses_kernel_files_through_links(tmp_path: Path) -> None:
    probe = FileProbe()
    link = tmp_path / "innocent.png"
    os.symlink("/proc/self/environ", link)
    assert probe.file(link) == "on a kernel file system"
    os.symlink("/dev/null", tmp_path / "null.png")
    assert probe.file(tmp_path / "null.png").startswith("on a kernel file system") or \
        probe.file(tmp_path / "null.png") == "not a regular file (a character device)"
    assert probe.file(tmp_path / ("x" * 300)) == "missing (file name too long)"
    assert probe.file(Path("bad\0name")) == "missing (invalid file name)"


def test_cli_list_and_pack_never_hang_or_trace_back(proj: Path, tmp_path: Path) -> None:
    """In a subprocess with a time limit: a FIFO opened by mistake would block forever."""
    main = proj / "shot" / "main.blend"
    env = {**os.environ, "BAT_HOSTILE_SECRET": "s3cr3t-7c1f"}
    for args in (["list", str(main)], ["list", "--missing", "--json", str(main)],
                 ["list", "--json", "--sha256", str(main)],
                 ["pack", "-p", str(proj), str(main), str(tmp_path / "out")]):
        proc = subprocess.run([sys.executable, "-m", "bat_core", *args], capture_output=True, text=True,
                              timeout=120, env=env, stdin=subprocess.DEVNULL)
        assert proc.returncode == 3, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    packed = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert packed
    for p in packed:  # bat's own environment never ends up in the pack
        assert b"s3cr3t-7c1f" not in p.read_bytes(), p
    assert not (tmp_path / "out" / "_outside_project" / "proc").exists()
    assert not (tmp_path / "out" / "_outside_project" / "dev").exists()


def test_pack_reports_special_files_with_their_reason(proj: Path, tmp_path: Path) -> None:
    result = pack(proj / "shot" / "main.blend", str(tmp_path / "out"), project=proj)
    reasons = {m.path.name: m.reason for m in result.missing}
    assert reasons["environ"] == "on a kernel file system"
    assert reasons["fifo.png"] == "not a regular file (a FIFO)"
    assert reasons["b" * 300 + ".png"] == "missing (file name too long)"
    sources = {str(f.source) for f in result.files}
    assert not any(s.startswith(("/proc", "/sys", "/dev")) for s in sources)
    assert str(proj / "shot" / "cache_ocean" / "disp_0001.exr") in sources
    assert str(proj / "shot" / "cache_ocean" / "foam_0001.exr") not in sources


def test_permission_denied_is_unreadable(tmp_path: Path) -> None:
    """EACCES for real: as an unprivileged user (root bypasses permissions, so the
    check runs as ``nobody`` in a child process when the tests run as root)."""
    work = Path(tempfile.mkdtemp(prefix="bat-eacces-"))
    try:
        os.chmod(work, 0o755)
        proj = make_hostile(work)
        shot = proj / "shot"
        os.chmod(shot / "tex", 0o000)  # no search permission: stat fails with EACCES
        for p in [work, *work.rglob("*")]:
            if p.is_dir() and not p.is_symlink() and p != shot / "tex":
                os.chmod(p, 0o755)
        code = ("import json, sys; from bat_core.trace import trace; "
                "print(json.dumps({u.block_name.decode('utf-8', 'replace'): u.problem "
                "for u in trace(sys.argv[1])}))")
        cmd = [sys.executable, "-c", code, str(shot / "main.blend")]
        def drop() -> None:
            os.setgid(65534)
            os.setuid(65534)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                                  preexec_fn=drop if os.geteuid() == 0 else None)
        except PermissionError as exc:
            pytest.skip(f"the unprivileged user cannot run this Python: {exc}")
        if proc.returncode != 0 and ("Permission denied" in proc.stderr or "ModuleNotFoundError" in proc.stderr):
            pytest.skip(f"the unprivileged user cannot run this checkout: {proc.stderr.strip().splitlines()[-1]}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        found = json.loads(proc.stdout)
        assert found["IMCaseUpper"] == "unreadable (permission denied)"
        assert found["IMLongName"] == "unreadable (permission denied)"
    finally:
        for p in [work, *work.rglob("*")] if (work / "hostile").exists() else [work]:
            if p.is_dir() and not p.is_symlink():
                os.chmod(p, 0o755)
        shutil.rmtree(work, ignore_errors=True)


def test_permission_denied_injected(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same as above wherever the real one cannot run (as root every check passes):
    ``stat`` fails with EACCES below one directory."""
    denied = str(proj / "shot" / "tex") + "/"
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fspath(path).startswith(denied):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    usages = _by_name(proj / "shot" / "main.blend")
    assert usages["CaseUpper"][0].problem == "unreadable (permission denied)"
    assert usages["LongName"][0].problem == "unreadable (permission denied)"


def test_problem_count_is_per_path(proj: Path) -> None:
    found = problems(trace(proj / "shot" / "main.blend"))
    assert len({p.path for p in found}) == len(found)
