"""The robustness run's checkpoint: a stopped run resumes with what it had finished, and only
a run that measures the same thing (settings, photos, bank, source) may resume it."""

from __future__ import annotations

from pathlib import Path

from bench.robustness.checkpoint import Checkpoint, fingerprint, source_digest
from bench.robustness.metrics import Outcome


def _rows(photo: str, n: int = 2) -> list[Outcome]:
    return [
        Outcome("pdq", f"t{i}", "g", False, False, i == 1, 3.5 + i, 1.25, 0.5, photo, "r1")
        for i in range(n)
    ]


def test_a_resumed_checkpoint_holds_every_finished_photo_and_the_time_spent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outcomes.partial.jsonl"
    first = Checkpoint(path, "run-a")
    assert first.done == {} and first.elapsed_before == 0.0
    for i, photo in enumerate(("p1", "p2", "p3")):
        first.add(f"{photo}:distractor", _rows(photo), elapsed=10.0 * (i + 1))
    again = Checkpoint(path, "run-a")
    assert sorted(again.done) == ["p1:distractor", "p2:distractor", "p3:distractor"]
    assert again.done["p2:distractor"] == _rows("p2")  # every field read back as written
    assert again.elapsed_before == 30.0
    again.add("p4:distractor", _rows("p4"), elapsed=41.0)
    assert len(Checkpoint(path, "run-a").done) == 4


def test_a_line_cut_short_by_a_kill_is_dropped_and_the_run_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.partial.jsonl"
    run = Checkpoint(path, "run-a")
    run.add("p1:registered", _rows("p1"), elapsed=5.0)
    run.add("p2:registered", _rows("p2"), elapsed=9.0)
    full = path.read_text()
    path.write_text(full + full.splitlines()[-1][:25])  # killed while writing p3
    resumed = Checkpoint(path, "run-a")
    assert sorted(resumed.done) == ["p1:registered", "p2:registered"]
    assert path.read_text() == full  # the broken tail is gone before anything is appended
    resumed.add("p3:registered", _rows("p3"), elapsed=12.0)
    assert sorted(Checkpoint(path, "run-a").done) == [
        "p1:registered",
        "p2:registered",
        "p3:registered",
    ]


def test_another_run_s_checkpoint_is_set_aside_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.partial.jsonl"
    Checkpoint(path, "run-a").add("p1:distractor", _rows("p1"), elapsed=5.0)
    other = Checkpoint(path, "run-b")
    assert other.done == {} and other.elapsed_before == 0.0
    assert other.set_aside is not None and other.set_aside.exists() and not path.exists()
    other.add("p9:distractor", _rows("p9"), elapsed=1.0)
    assert list(Checkpoint(path, "run-b").done) == ["p9:distractor"]
    fresh = Checkpoint(path, "run-b", resume=False)  # --no-resume
    assert fresh.done == {} and fresh.set_aside is not None


def test_finishing_removes_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.partial.jsonl"
    run = Checkpoint(path, "run-a")
    run.add("p1:distractor", _rows("p1"), elapsed=5.0)
    run.finish()
    assert not path.exists()
    assert Checkpoint(path, "run-a").done == {}


def test_the_fingerprint_follows_the_source_settings_and_photos(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    module = tmp_path / "src" / "m.py"
    module.write_text("X = 1\n")
    (tmp_path / "src" / "__pycache__").mkdir()
    (tmp_path / "src" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    before = source_digest(["src"], base=tmp_path)
    (tmp_path / "src" / "notes.txt").write_text("not source")
    (tmp_path / "src" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\1")
    assert source_digest(["src"], base=tmp_path) == before
    module.write_text("X = 2\n")
    assert source_digest(["src"], base=tmp_path) != before
    base = fingerprint({"fpr": True}, ["p1:distractor"], ["r1"])
    assert fingerprint({"fpr": True}, ["p1:distractor"], ["r1"]) == base
    assert fingerprint({"fpr": False}, ["p1:distractor"], ["r1"]) != base
    assert fingerprint({"fpr": True}, ["p2:distractor"], ["r1"]) != base
    assert fingerprint({"fpr": True}, ["p1:distractor"], ["r2"]) != base
