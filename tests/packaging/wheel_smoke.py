"""Build childguard's wheel from a clean copy of the checkout, install it into a throwaway
virtual environment, and run the installed command outside the source tree (`make
wheel-smoke`; `make test` runs it).

1. The files git knows (tracked, and untracked ones it does not ignore) are copied into a
   temporary folder, so that nothing built in place (the kernels' .so files, build/) is in
   it, and the wheel is built there with the project venv's setuptools and numpy
   (`pip wheel --no-deps --no-build-isolation`; nothing is downloaded).
2. The wheel must hold every compiled kernel and every file of the package that is not
   Python source: templates, catalogs, static files (vendored ones too), migrations and
   their template, the demo's assets.
3. A virtual environment without pip gets the wheel (the project venv's pip installs it,
   `--no-deps`) and a `.pth` line naming the project venv's site-packages for the
   dependencies; that folder's own `.pth` files (the editable install of the checkout) are
   not read from there, so the `childguard` imported is the wheel's, which is checked.
4. From a temporary working folder, with CHILDGUARD_HOME there: `childguard --version`,
   `hash` of a synthetic photo, `bank create` / `bank import` / `match` on a new store
   (the match exits 3), and `serve` answering `/status` and a page (the report form in Dutch), then
   stopping on SIGTERM with exit 0.

Exit 0 when every step passed; otherwise the step that failed and its output, exit 1.
`--out DIR` keeps the wheel (`make wheel` writes it to dist/ for the Containerfile);
`--build-only` stops after step 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
NOT_DATA = (".py", ".pyc", ".c", ".h")


class SmokeFailed(Exception):
    pass


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> str:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode not in ok:
        raise SmokeFailed(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


# Files that setup steps put into the package (`make jsvendor`), though git ignores them.
VENDORED = "src/childguard/service/web/static/vendor"
# Package files that are build inputs, not run-time data: the npm pins of the vendored files.
BUILD_INPUTS = ("src/childguard/service/web/jsvendor/",)


def checkout_files() -> list[str]:
    """What a clean checkout after the setup steps holds: the files git knows (tracked, and
    untracked ones it does not ignore) and the vendored static files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    names = {f for f in out.split("\0") if f}
    names |= {str(p.relative_to(ROOT)) for p in (ROOT / VENDORED).glob("*")}
    return sorted(f for f in names if (ROOT / f).is_file() and not f.startswith(BUILD_INPUTS))


def build_wheel(work: Path) -> Path:
    tree = work / "checkout"
    for name in checkout_files():
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    dist = work / "dist"
    run(
        VENV / "bin" / "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        tree,
        "-w",
        dist,
        cwd=work,
    )
    wheels = list(dist.glob("childguard-*.whl"))
    if len(wheels) != 1:
        raise SmokeFailed(f"want one wheel in {dist}, found {wheels}")
    return wheels[0]


def check_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    kernels = [
        k
        for k in ("childguard/_jpegdc.", "childguard/index/_mih.", "childguard/robust/_votes.")
        if not any(n.startswith(k) and n.endswith(".so") for n in names)
    ]
    if kernels:
        raise SmokeFailed(f"the wheel lacks the compiled kernels {kernels}")
    data = [
        f.removeprefix("src/")
        for f in checkout_files()
        if f.startswith("src/childguard/") and not f.endswith(NOT_DATA) and "__pycache__" not in f
    ]
    missing = [f for f in data if f not in names]
    if missing:
        raise SmokeFailed(
            "the wheel lacks these package files (add them to [tool.setuptools.package-data] "
            f"in pyproject.toml): {missing}"
        )


def make_venv(work: Path, wheel: Path) -> Path:
    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    run(
        VENV / "bin" / "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        wheel,
        cwd=work,
    )
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work)
    deps = sysconfig.get_path("purelib")
    (Path(site.strip()) / "_childguard_smoke_deps.pth").write_text(deps + "\n")
    return venv


def check_import(venv: Path, cwd: Path) -> None:
    code = (
        "import childguard, childguard._jpegdc, childguard.index._mih, childguard.robust._votes, "
        "sys; "
        "print(childguard.__file__)"
    )
    where = Path(run(venv / "bin" / "python", "-c", code, cwd=cwd).strip())
    if ROOT in where.parents or not where.is_relative_to(venv):
        raise SmokeFailed(f"the imported childguard is {where}, not the wheel's in {venv}")


def photo(venv: Path, cwd: Path) -> Path:
    path = cwd / "photo.jpg"
    code = (
        "import numpy as np; from PIL import Image; "
        "y, x = np.mgrid[0:240, 0:320]; "
        "rgb = np.dstack([(x * 255 // 320), (y * 255 // 240), ((x + y) % 256)]).astype('uint8'); "
        f"Image.fromarray(rgb).save({str(path)!r}, quality=90)"
    )
    run(venv / "bin" / "python", "-c", code, cwd=cwd)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def check_serve(cg: Path, db: Path, cwd: Path, env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(cg), "serve", "--port", str(port), "--db", str(db)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.communicate()[0]
                    raise SmokeFailed(f"serve did not answer /status:\n{output}") from None
                time.sleep(0.2)
        if status != 200:
            raise SmokeFailed(f"/status answered {status}: {body}")
        status, body = get(f"http://127.0.0.1:{port}/report?lang=nl")
        if status != 200 or "<form" not in body or 'lang="nl"' not in body:
            raise SmokeFailed(f"/report?lang=nl answered {status}: {body[:300]}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            raise SmokeFailed("serve did not stop on SIGTERM") from None
    if proc.returncode != 0:
        raise SmokeFailed(f"serve exited {proc.returncode} on SIGTERM:\n{output}")


def step(name: str, started: list[float]) -> None:
    """Print how long the step before `name` took (for `make wheel-smoke`'s log)."""
    now = time.monotonic()
    print(f"  {now - started[0]:5.1f} s  {name}", flush=True)
    started[0] = now


def smoke(work: Path, out: Path | None, run_it: bool) -> None:
    clock = [time.monotonic()]
    wheel = build_wheel(work)
    step("built the wheel from a clean copy", clock)
    check_contents(wheel)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, out / wheel.name)
        print(f"  wrote {out / wheel.name}")
    if not run_it:
        return
    venv = make_venv(work, wheel)
    step("installed it into a throwaway venv", clock)
    cwd = work / "elsewhere"
    cwd.mkdir()
    check_import(venv, cwd)
    cg = venv / "bin" / "childguard"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHILDGUARD_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        CHILDGUARD_HOME=str(cwd / "home"),
        CHILDGUARD_ADMIN_PASSWORD="smoke-test-password-0",
        PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
    )
    version = run(cg, "--version", cwd=cwd, env=env)
    if "0." not in version:
        raise SmokeFailed(f"--version said {version!r}")
    image = photo(venv, cwd)
    record = json.loads(run(cg, "hash", image, cwd=cwd, env=env).splitlines()[0])
    if not record.get("pdq") or record.get("error"):
        raise SmokeFailed(f"hash gave {record}")
    db = cwd / "store.db"
    run(cg, "bank", "create", "smoke", "--kind", "known-abuse", "--db", db, cwd=cwd, env=env)
    (cwd / "list.txt").write_text(record["md5"] + "\n")
    run(cg, "bank", "import", "smoke", "list.txt", "--db", db, cwd=cwd, env=env)
    run(cg, "match", image, "--db", db, cwd=cwd, env=env, ok=(3,))
    step("--version, hash, bank create, bank import, match", clock)
    check_serve(cg, db, cwd, env)
    step("serve answered /status and a page", clock)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also copy the wheel into this folder")
    parser.add_argument(
        "--build-only", action="store_true", help="build and check the wheel, run nothing"
    )
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="childguard-wheel-") as tmp:
        try:
            smoke(Path(tmp), args.out, not args.build_only)
        except SmokeFailed as exc:
            print(f"wheel smoke test failed: {exc}", file=sys.stderr)
            return 1
    what = "wheel built and checked" if args.build_only else "wheel smoke test passed"
    print(f"{what} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
