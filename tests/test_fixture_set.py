"""Tests generated from the fixtures fail, not vanish, when a fixture is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import BLENDFILES, VERSIONS, FixtureMissing, all_fixtures, fixture_at


@pytest.fixture
def blendfiles(tmp_path: Path) -> Path:
    """A copy of tests/blendfiles made of symbolic links (cheap), to break at will."""
    root = tmp_path / "blendfiles"
    for version in VERSIONS:
        for path in sorted((BLENDFILES / version).rglob("*")):
            dst = root / path.relative_to(BLENDFILES)
            if path.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(path)
    return root


def test_the_complete_set_is_found(blendfiles: Path) -> None:
    found = all_fixtures(blendfiles)
    assert len(found) == len(all_fixtures()) > 40
    assert {f.blend.name for f in found} >= {"images.blend", "shot.blend", "geonodes.blend", "notes.blend"}


@pytest.mark.parametrize("damage", [
    "v42",                                   # a whole Blender version
    "v50/volumes",                           # a scenario
    "v50/images/images.blend",               # a blend file (its answer left behind)
    "v42/libraries/libs/char.blend.json",    # an answer (its blend file left behind)
    "v50/geonodes/geonodes.blend.json",      # the only answer of a scenario
])
def test_a_missing_fixture_is_an_error(blendfiles: Path, damage: str) -> None:
    path = blendfiles / damage
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    with pytest.raises(FixtureMissing):
        all_fixtures(blendfiles)


def test_a_missing_data_fixture_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "main.blend").write_bytes(b"")
    with pytest.raises(FixtureMissing, match="answer"):
        fixture_at(tmp_path / "main.blend", tmp_path)
