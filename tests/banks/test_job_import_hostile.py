"""The service's `bank-import` job reads uploads as `bank import` does: UTF-16 with a byte
order mark is read, a decoding error names its line, a hostile record names its number, and
an import that finds another writing fails the job with the reason; on SQLite and
PostgreSQL."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest

from childguard.banks import create_bank
from childguard.banks.bulk import import_lock
from childguard.jobs import bank_import, queue
from childguard.jobs.registry import JobContext, JobFailed
from childguard.store import Store


def md5(i: int) -> str:
    return hashlib.md5(f"job-{i}".encode()).hexdigest()


def _run(store: Store, tmp_path: Path, upload: bytes, **params: str) -> dict[str, object]:
    queued = queue.enqueue(store, bank_import.KIND, {"bank": "hotline", **params}, "test")
    job = queue.claim(store, "test-worker", [bank_import.KIND])
    assert job is not None and job.id == queued.id
    workdir = tmp_path / str(job.id)
    workdir.mkdir()
    (workdir / bank_import.UPLOAD_NAME).write_bytes(upload)
    return bank_import.run_bank_import(JobContext(job, store, workdir, lambda _d, _t: None))


def test_uploads_read_like_bank_import(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = create_bank(store, "hotline", kind="known-abuse", actor="test")
    text = "".join(md5(i) + "\r\n" for i in range(5))
    result = _run(store, tmp_path, codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert (result["added"], result["invalid"]) == (5, 0)

    bad = (md5(10) + "\n" + md5(11) + "\n").encode() + b"\xc3(\n"
    with pytest.raises(JobFailed, match=r"line 3: .*not valid UTF-8"):
        _run(store, tmp_path, bad)

    context = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"
    nest = "[" * 100_000 + "]" * 100_000
    deep = '{"@odata.context": "' + context + '", "value": [' + nest + "]}"
    with pytest.raises(JobFailed, match=r"record 1: JSON nested more than"):
        _run(store, tmp_path, deep.encode(), format="vics")

    monkeypatch.setattr(bank_import, "LOCK_WAIT_S", 0.3)
    with import_lock(store, bank.id), pytest.raises(JobFailed, match="another import is writing"):
        _run(store, tmp_path, (md5(20) + "\n").encode())
