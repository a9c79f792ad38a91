"""Only regular files are packed: no FIFO, device or kernel file, whatever a blend file names.

The planner leaves such files out (with the reason); a file that became one
after it was planned is refused when it is opened, with one line naming it
— it never blocks the pack and is never read.  Paths too long, looping,
unreadable or through a file are reported, never a traceback.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bat_core.pack import Packer, PackError, pack
from bat_core.pack.sources import open_source
from bat_core.progress import PackCallback

from .packfaults import bat, hashes
from .test_pack_plan import set_paths

KINDS = ["directory", "zip"]


def _target(tmp_path: Path, kind: str) -> Path:
    return tmp_path / ("out.zip" if kind == "zip" else "out")


def _packed_names(target: Path) -> list[str]:
    if target.suffix == ".zip":
        with zipfile.ZipFile(target) as zf:
            return zf.namelist()
    return [p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()]


def _packed_bytes(target: Path) -> list[bytes]:
    if target.suffix == ".zip":
        with zipfile.ZipFile(target) as zf:
            return [zf.read(n) for n in zf.namelist()]
    return [p.read_bytes() for p in target.rglob("*") if p.is_file()]


@pytest.mark.parametrize("kind", KINDS)
def test_fifo_in_a_bake_directory_is_not_read(copy_scenario, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    """The finding: a FIFO inside a cache directory hung ``bat pack``."""
    root = copy_scenario("v50", "geonodes")
    fifo = root / "gn_bake_custom" / "blobs" / "pipe.blob"
    os.mkfifo(fifo)
    target = _target(tmp_path, kind)
    res = subprocess.run(bat("pack", str(root / "geonodes.blend"), str(target)), capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert not [p for p in _packed_names(target) if p.endswith("pipe.blob")]
    with Packer(root / "geonodes.blend", str(tmp_path / "plan"), noop=True) as packer:
        plan = packer.plan()
    assert fifo not in {f.source for f in plan.files}
    # Left out by the planner (with the reason), unless the tracer did not even list it.
    assert {f.source: f.reason for f in plan.excluded}.get(fifo, "a FIFO, not a regular file") == \
        "a FIFO, not a regular file"


@pytest.mark.parametrize("kind", KINDS)
def test_proc_file_as_an_image_is_never_packed(copy_scenario, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    """The finding: ``/proc/self/environ`` as an image put bat's environment into the pack."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("no /proc here")
    root = copy_scenario("v50", "images")
    set_paths(root / "images.blend", lambda p, s: b"/proc/self/environ" if p.name == "single.png" else None)
    secret = "bat-test-secret-token-0123456789"
    target = _target(tmp_path, kind)
    res = subprocess.run(bat("pack", str(root / "images.blend"), str(target)), capture_output=True, text=True,
                         timeout=30, env={**os.environ, "BAT_TEST_SECRET": secret})
    assert res.returncode in (0, 3), res.stderr
    assert all(secret.encode() not in data for data in _packed_bytes(target))
    with Packer(root / "images.blend", str(tmp_path / "plan"), noop=True) as packer:
        plan = packer.plan()
    assert not [f for f in plan.files if str(f.source).startswith("/proc")]


class _Replace(PackCallback):
    """Once planned, replace a source by something else (a FIFO, a symlink to /proc...)."""

    def __init__(self, path: Path, make) -> None:  # type: ignore[no-untyped-def]
        self.path, self.make = path, make

    def pack_start(self, file_count: int, byte_count: int) -> None:
        self.path.unlink()
        self.make(self.path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("what", ["fifo", "proc"])
def test_source_replaced_after_planning_is_refused(copy_scenario, tmp_path: Path, kind: str, what: str) -> None:  # type: ignore[no-untyped-def]
    root = copy_scenario("v50", "images")
    victim = root / "textures" / "single.png"
    if what == "fifo":
        make, why = os.mkfifo, "a FIFO, not a regular file"
    else:
        if not Path("/proc/self/environ").exists():
            pytest.skip("no /proc here")
        make, why = (lambda p: p.symlink_to("/proc/self/environ")), "a system file"
    target = _target(tmp_path, kind)
    with Packer(root / "images.blend", str(target), callback=_Replace(victim, make)) as packer:
        packer.plan()
        with pytest.raises(PackError) as info:
            packer.execute()
    assert str(info.value).startswith(f"{victim}: {why}")
    assert "refusing to pack it" in str(info.value)
    assert not [p for p in tmp_path.rglob("*.partial")]


def test_open_source_refuses_devices_and_directories(tmp_path: Path) -> None:
    for path, why in ((Path("/dev/null"), "a character device"), (tmp_path, "a directory")):
        if not path.exists():
            continue
        with pytest.raises(PackError, match=f"{why}, not a regular file; refusing to pack it"):
            open_source(path)
    regular = tmp_path / "x"
    regular.write_bytes(b"data")
    fd, st = open_source(regular)
    try:
        assert os.read(fd, 10) == b"data" and st.st_size == 4
        assert os.get_blocking(fd)
    finally:
        os.close(fd)


_HOSTILE_PLAN = """
import json, sys
from pathlib import Path
from bat_core.errors import BatError
from bat_core.pack.plan import make_plan
from bat_core.trace import BlendFileCache, trace

blend, swaps = Path(sys.argv[1]), json.loads(sys.argv[2])
with BlendFileCache() as cache:
    usages = list(trace(blend, cache=cache))
    for usage in usages:
        if usage.abspath.name in swaps:
            usage.files = [Path(swaps[usage.abspath.name])]
    try:
        plan = make_plan(blend, blend.parent, usages)
    except BatError as exc:
        print(json.dumps({"error": str(exc)}))
    else:
        print(json.dumps({"excluded": {str(f.source): f.reason for f in plan.excluded}}))
"""


def _plan_with(blend: Path, swaps: dict[str, Path], prefix: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    """Plan ``blend`` with the files of some usages replaced by hostile paths (in a subprocess)."""
    import json

    cmd = [sys.executable, "-c", _HOSTILE_PLAN, str(blend), json.dumps({k: str(v) for k, v in swaps.items()})]
    res = subprocess.run([*(prefix or []), *cmd], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def test_planner_survives_hostile_paths(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every file-system call of the planner on such a path ends in a reason, not an exception."""
    root = copy_scenario("v50", "images")
    too_long = root / ("b" * 300 + ".png")
    loop = root / "loop"
    loop.symlink_to(loop)
    through_file = root / "textures" / "single.png" / "x.png"
    reasons = _plan_with(root / "images.blend", {"single.png": too_long, "clip.mp4": loop / "x.png",
                                                  "tëxture ü 1.png": through_file})["excluded"]
    assert reasons[str(too_long)] == f"cannot be read ({os.strerror(errno.ENAMETOOLONG)})"
    assert reasons[str(loop / "x.png")] == f"cannot be read ({os.strerror(errno.ELOOP)})"
    assert reasons[str(through_file)] == f"cannot be read ({os.strerror(errno.ENOTDIR)})"


def test_planner_file_behind_an_unsearchable_directory(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """EACCES: the file is there and this user cannot read it: an error naming it, before any write."""
    from .packfaults import no_dac_override

    prefix = no_dac_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: file permissions cannot be made to apply")
    root = copy_scenario("v50", "images")
    hidden = root / "private"
    hidden.mkdir()
    (hidden / "x.png").write_bytes(b"\x89PNG")
    hidden.chmod(0o600)  # readable, not searchable: stat of x.png fails with EACCES
    try:
        out = _plan_with(root / "images.blend", {"single.png": hidden / "x.png"}, prefix)
    finally:
        hidden.chmod(0o755)
    assert out == {"error": f"cannot read {hidden / 'x.png'}: {os.strerror(errno.EACCES)}"}


def test_blend_file_name_too_long(tmp_path: Path, run_bat) -> None:  # type: ignore[no-untyped-def]
    name = tmp_path / ("b" * 300 + ".blend")
    res = run_bat("pack", str(name), str(tmp_path / "out"))
    assert res.exit_code == 1
    assert res.stderr.strip() == f"bat: error: {name}: {os.strerror(errno.ENAMETOOLONG)}"
    assert not (tmp_path / "out").exists()


def test_rewritten_blend_file_with_a_255_byte_name(copy_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The temporary copy of a rewritten blend file has a name of the packer's own, not the source's."""
    root = copy_scenario("v50", "libraries")
    long_name = root / "shots" / ("s" * 249 + ".blend")
    os.rename(root / "shots" / "shot.blend", long_name)
    before = hashes(root)
    result = pack(long_name, str(tmp_path / "out"))
    assert result.complete
    assert {f.action for f in result.files if f.source == long_name} == {"rewritten"}
    assert (tmp_path / "out" / long_name.name).is_file()
    assert hashes(root) == before
