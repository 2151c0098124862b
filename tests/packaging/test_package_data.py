"""Every file of the package that is not Python source is named by a pattern of
`[tool.setuptools.package-data]`, so that a wheel (and `pip install .`) carries it; the
wheel itself is built and run by `make wheel-smoke` (tests/packaging/wheel_smoke.py)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "childguard"
NOT_DATA = (".py", ".pyc", ".c", ".h", ".so")
# Build inputs inside the package folder, not run-time data: the npm pins of vendored files.
BUILD_INPUTS = ("service/web/jsvendor/",)


def _package_files() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "src/childguard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    names = {str(Path(f).relative_to("src/childguard")) for f in out.split("\0") if f}
    names |= {
        str(p.relative_to(PACKAGE)) for p in (PACKAGE / "service/web/static/vendor").glob("*")
    }
    return {
        n
        for n in names
        if (PACKAGE / n).is_file()
        and not n.endswith(NOT_DATA)
        and "__pycache__" not in n
        and not n.startswith(BUILD_INPUTS)
    }


def test_package_data_names_every_data_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["childguard"]
    covered = {str(p.relative_to(PACKAGE)) for pat in patterns for p in PACKAGE.glob(pat)}
    files = _package_files()
    assert {"service/web/static/vendor/htmx.min.js", "store/migrations/script.py.mako"} <= files
    assert any(f.startswith("service/web/templates/") for f in files)
    assert any(f.endswith(".po") for f in files) and any(
        f.startswith("demo/assets/") for f in files
    )
    assert sorted(files - covered) == []
