"""The short seeded tier of the C kernels' sanitizer fuzzing (`hostile/fuzz_kernels.py`; the long
tier is `make fuzz-kernels`): both kernels built with ASan and UBSan, a few hundred mutants."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("fuzz_kernels.py")


def _runtime(name: str) -> str:
    found = subprocess.run(
        ["gcc", f"-print-file-name={name}"], capture_output=True, text=True
    ).stdout.strip()
    return found if os.path.isabs(found) else ""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_kernels_under_asan_and_ubsan_short_tier(tmp_path: Path) -> None:
    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    if not (asan and ubsan):
        pytest.skip("gcc has no sanitizer runtimes")
    build = subprocess.run(
        [sys.executable, str(HARNESS), "--build", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    env = {
        **os.environ,
        "LD_PRELOAD": f"{asan} {ubsan}",
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }
    run = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--run",
            str(tmp_path),
            "--seed",
            "21",
            "--iterations",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "no sanitizer report" in run.stdout
    assert "ERROR: AddressSanitizer" not in run.stderr
    assert "runtime error:" not in run.stderr
