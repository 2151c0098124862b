"""Videos through the commands a user runs: hash, bank import, match, scan and protect register
all handle them through the one pipeline, next to photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.video_corpus import Corpus, demo_photos
from typer.testing import CliRunner

from childguard.cli import EXIT_FOUND, EXIT_OK, app

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_hash_gives_vpdq_and_exact_hashes_of_a_video(slideshow: Path) -> None:
    code, out = cli("hash", str(slideshow))
    assert code == EXIT_OK, out
    record = json.loads(out.splitlines()[0])
    assert record["error"] is None and record["vpdq"] and record["sha256"] and record["md5"]
    assert record["pdq"] is None  # a video has no photo hash
    frames = json.loads(record["vpdq"])
    assert len(frames) >= 5 and all(len(f.split(",")[0]) == 64 for f in frames)


def test_bank_import_match_and_scan_of_videos(
    slideshow: Path, pan: Path, corpus: Corpus, tmp_path: Path
) -> None:
    db = str(tmp_path / "store.db")
    _, out = cli("hash", str(slideshow))
    vpdq = json.loads(out.splitlines()[0])["vpdq"]
    listing = tmp_path / "list.te"
    listing.write_text(f"video_vpdq {vpdq}\n")  # python-threatexchange local_file line
    assert cli("bank", "create", "hotline", "--kind", "known-abuse", "--db", db)[0] == EXIT_OK
    code, out = cli("bank", "import", "hotline", str(listing), "--format", "te", "--db", db)
    assert code == EXIT_OK, out
    code, out = cli("bank", "export", "hotline", str(tmp_path / "out.te"), "--db", db)
    assert code == EXIT_OK, out
    assert vpdq in (tmp_path / "out.te").read_text()

    reencoded = corpus.variant(slideshow, "reencoded")
    code, out = cli("match", str(reencoded), "--format", "jsonl", "--db", db)
    assert code == EXIT_FOUND, out
    (line,) = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    (match,) = line["matches"]
    assert match["signal_type"] == "vpdq" and match["bank_name"] == "hotline"
    assert match["detail"]["query_match_percent"] >= 80
    assert cli("match", str(pan), "--db", db)[0] == EXIT_OK  # a clip of another photo

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    shutil.copy(reencoded, evidence / "clip.mp4")
    shutil.copy(pan, evidence / "other.mp4")
    shutil.copy(demo_photos()[0], evidence / "photo.jpg")
    code, out = cli("scan", str(evidence), "--report", str(tmp_path / "report"), "--db", db)
    assert code == EXIT_FOUND, out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["files"], summary["matched_files"], summary["failed"]) == (3, 1, 0)
    assert summary["by_bank"] == {"hotline": 1}


def test_protect_register_takes_videos(slideshow: Path, corpus: Corpus, tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    album = tmp_path / "album"
    album.mkdir()
    shutil.copy(slideshow, album / "camp.mp4")
    shutil.copy(demo_photos()[0], album / "camp.jpg")
    assert cli("org", "add", "Scouts", "--db", db)[0] == EXIT_OK
    code, out = cli("protect", "register", str(album), "--org", "Scouts", "--db", db)
    assert code == EXIT_OK and "registered 2" in out, out
    code, out = cli(
        "match", str(corpus.variant(slideshow, "resized")), "--format", "jsonl", "--db", db
    )
    assert code == EXIT_FOUND, out
    (line,) = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert {m["signal_type"] for m in line["matches"]} == {"vpdq"}
    assert {m["bank_kind"] for m in line["matches"]} == {"protected"}


def test_a_bank_sets_its_own_vpdq_threshold(pan: Path, corpus: Corpus, tmp_path: Path) -> None:
    """Every frame of a trimmed copy is in the bank video but not the other way round (4 of
    6): a bank that also asks for 90% of its own frames does not match it."""
    db = str(tmp_path / "store.db")
    _, out = cli("hash", str(pan))
    listing = tmp_path / "list.te"
    listing.write_text(f"vpdq {json.loads(out.splitlines()[0])['vpdq']}\n")
    for bank, extra in (("lenient", []), ("strict", ["--signal-threshold", "vpdq=80,90"])):
        code, out = cli("bank", "create", bank, "--kind", "known-abuse", *extra, "--db", db)
        assert code == EXIT_OK, out
        assert cli("bank", "import", bank, str(listing), "--db", db)[0] == EXIT_OK
    code, out = cli("bank", "create", "bad", "--kind", "known-abuse", "--signal-threshold",
                    "vpdq=lots", "--db", db)  # fmt: skip
    assert code == 2 and "vpdq" in out
    code, out = cli("match", str(corpus.variant(pan, "trimmed")), "--format", "jsonl", "--db", db)
    assert code == EXIT_FOUND, out
    (line,) = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert {m["bank_name"] for m in line["matches"]} == {"lenient"}
