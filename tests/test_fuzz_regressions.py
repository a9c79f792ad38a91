"""Every input the fuzzer ever found failing, run again: each must now end in a
result or in bat's own error (see ``tests/fuzz/harness.py`` for the stages).

The inputs are in ``tests/fuzz/corpus/`` (``index.txt`` says what each one did
when it was found); ``python tests/fuzz/fuzz_blend.py`` adds new ones.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from .fuzz import harness, mutators

CORPUS = harness.corpus_inputs()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harness.make_workdir(tmp_path_factory.mktemp("fuzz"))


def test_the_corpus_is_not_empty() -> None:
    assert len(CORPUS) >= 5


@pytest.mark.parametrize("name,data", CORPUS, ids=[name for name, _ in CORPUS])
def test_stored_failure_is_handled(name: str, data: bytes, work: Path) -> None:
    assert harness.input_name(data) + ".zst" == name  # decoded exactly as it was stored
    outcome = harness.run_input(data, work, timeout=60)
    assert not outcome.failed, outcome.message


def test_corpus_round_trip() -> None:
    seed = next(harness.SEEDS.glob("shot-v50.blend")).read_bytes()
    data = mutators.flip_bits(mutators.decompress(seed)[0], random.Random(1), 5)
    stored = harness.encode(data)
    assert len(stored) < 2000  # a few flipped bits cost a few bytes, not a copy of the file
    assert harness.decode(stored) == data


def test_seeds_pass_unchanged(work: Path) -> None:
    """The harness itself: real files trace and pack ('ok'), nothing is rejected."""
    for seed in sorted(harness.SEEDS.glob("*.blend")):
        outcome = harness.run_input(seed.read_bytes(), work)
        assert outcome.status == "ok", (seed.name, outcome.message)


def test_harness_catches_what_it_should(work: Path) -> None:
    """A failure is reported as one (not hidden), and the time bound holds."""
    with pytest.raises(harness.InputTimeout), harness.time_bound(0.2):
        while True:
            pass
    seed = (harness.SEEDS / "shot-v50.blend").read_bytes()
    outcome = harness.run_input(seed[: len(seed) // 2], work)
    assert outcome.status == "error" and "truncated" in outcome.message
    with harness.memory_bound(64 << 20), pytest.raises(MemoryError):
        bytearray(1 << 30)
