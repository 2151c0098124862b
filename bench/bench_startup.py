"""Start-up time of the `childguard` command, as a ratio to `python -c pass` in the same run.

Each command is started as a new process, the way an operator runs it, several times in
turn with the others (so a busy moment of the machine falls on all of them alike); the
table gives the median wall time and its ratio to the interpreter's own start. The goals
(issue 18): `--help` and `--version` under 0.3 s, a small `hash` under 0.6 s. The photo
hashed is a synthetic 320x240 JPEG. Issue 20's "two-process run over 45 photos" is
`childguard hash .cache/photos -j 2` (the photos `make photos` fetches), timed too.

With `--baseline REV` the same commands also run from the source tree of commit REV (its
`src/` unpacked to a temporary folder, with this checkout's compiled kernels copied in), in
the same rounds, so that before and after are compared on one machine at one time. Every
command runs as `python -c "from childguard.cli import main; main()"` with PYTHONPATH set to
the tree it runs from, for both. Results go to the `startup` section of docs/benchmarks.md.

    .venv/bin/python bench/bench_startup.py [--runs 15] [--baseline 15fcbdd]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `bench._common` when run as a script

from bench._common import machine_info, record_section  # noqa: E402

GOALS = {"--help": 0.3, "--version": 0.3, "hash (1 photo, -j 1)": 0.6, "hash (1 photo)": 0.6}
PHOTOS = ROOT / ".cache" / "photos"
LAUNCH = "import sys; sys.argv[0] = 'childguard'; from childguard.cli import main; main()"
FORTY_FIVE = "hash (45 photos, -j 2)"


def _photo(folder: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(18)
    base = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    path = folder / "photo.jpg"
    path.write_bytes(buf.getvalue())
    return path


def _tree_of(rev: str, folder: Path) -> Path:
    """The `src/` of commit `rev`, unpacked under `folder`, with this checkout's built kernels."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    src = folder / "src"
    for built in (ROOT / "src").rglob("*.so"):
        target = src / built.relative_to(ROOT / "src")
        if target.parent.is_dir() and not target.exists():
            shutil.copy2(built, target)
    return src


def _cases(photo: Path, with_photos: bool) -> dict[str, list[str]]:
    cases = {
        "--help": ["--help"],
        "--version": ["--version"],
        "bank --help": ["bank", "--help"],
        "hash (1 photo, -j 1)": ["hash", str(photo), "-j", "1"],
        "hash (1 photo)": ["hash", str(photo)],
    }
    if with_photos:
        cases[FORTY_FIVE] = ["hash", str(PHOTOS), "-j", "2", "--no-progress"]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="Starts of each command.")
    parser.add_argument(
        "--photo-runs", type=int, default=5, help=f"Runs of `{FORTY_FIVE}` (it is longer)."
    )
    parser.add_argument("--baseline", help="Also run the commands from this commit's tree.")
    parser.add_argument("--no-record", action="store_true", help="Print only.")
    args = parser.parse_args()
    with_photos = PHOTOS.is_dir() and any(PHOTOS.rglob("*.jpg"))
    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        photo = _photo(Path(tmp))
        trees = {"now": ROOT / "src"}
        if args.baseline:
            base_dir = Path(tmp) / "baseline"
            base_dir.mkdir()
            trees[args.baseline] = _tree_of(args.baseline, base_dir)
        runs: list[tuple[str, str, list[str], dict[str, str] | None]] = [
            ("python -c pass", "", [sys.executable, "-c", "pass"], None)
        ]
        for label, src in trees.items():
            env = {**os.environ, "PYTHONPATH": str(src)}
            for name, argv in _cases(photo, with_photos).items():
                runs.append((name, label, [sys.executable, "-c", LAUNCH, *argv], env))
        runs.append(
            (
                "every command module imported",
                "now",
                [sys.executable, "-c", "import childguard.cli as c; c.load_all()"],
                {**os.environ, "PYTHONPATH": str(trees["now"])},
            )
        )
        times: dict[tuple[str, str], list[float]] = {(n, lab): [] for n, lab, _a, _e in runs}
        for round_ in range(args.runs):
            for name, label, argv, run_env in runs:
                if name == FORTY_FIVE and round_ >= args.photo_runs:
                    continue
                start = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True, timeout=300, env=run_env)
                times[(name, label)].append(time.perf_counter() - start)
    med = {key: statistics.median(values) for key, values in times.items()}
    base = med[("python -c pass", "")]
    text = _report(med, base, args, trees, with_photos, machine)
    print(text)
    if not args.no_record:
        record_section("startup", text)


def _report(
    med: dict[tuple[str, str], float],
    base: float,
    args: argparse.Namespace,
    trees: dict[str, Path],
    with_photos: bool,
    machine: str,
) -> str:
    rev = args.baseline
    lines = [
        "## Start-up time (`bench/bench_startup.py`)",
        "",
        f"Machine: {machine}; load average {os.getloadavg()[0]:.1f} at the end. Median "
        f"of {args.runs} starts of each ({args.photo_runs} of `{FORTY_FIVE}`), interleaved"
        + (
            f"; `{rev}` is the tree before the start-up work, run in the same rounds."
            if rev
            else "."
        )
        + f" `python -c pass`: {base:.3f} s.",
        "",
    ]
    if rev:
        lines += [
            f"| command | now s | now × `python -c pass` | `{rev}` s | `{rev}` × `python -c pass` "
            f"| now / `{rev}` | goal |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
    else:
        lines += [
            "| command | median s | × `python -c pass` | goal |",
            "| --- | ---: | ---: | --- |",
        ]
    names = [n for n, lab in med if lab == "now"]
    for name in names:
        now = med[(name, "now")]
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"< {goal} s: " + ("met" if now < goal else "NOT met")
        if rev and (name, rev) in med:
            old = med[(name, rev)]
            lines.append(
                f"| `{name}` | {now:.3f} | {now / base:.1f} | {old:.3f} | {old / base:.1f} | "
                f"{now / old:.2f} | {verdict} |"
            )
        elif rev:
            lines.append(f"| `{name}` | {now:.3f} | {now / base:.1f} | | | | {verdict} |")
        else:
            lines.append(f"| `{name}` | {now:.3f} | {now / base:.1f} | {verdict} |")
    lines += [""]
    if with_photos:
        for label in trees:
            run45 = med.get((FORTY_FIVE, label))
            one = med.get(("hash (1 photo)", label))
            if run45 and one:
                lines.append(
                    f"- `{label}`: `{FORTY_FIVE}` {run45:.2f} s, of which about {one:.2f} s "
                    f"({one / run45:.0%}) is what a one-photo `hash` takes end to end: the start."
                )
        lines.append("")
    lines += [
        "The ratio is the measure to compare between machines: on a loaded machine every start "
        "is slower, the interpreter's own too.",
        "",
        "`childguard --help` and `--version` import no command module (the root group lists "
        "them from `childguard.cli.COMMANDS`); a command imports only its own module, and "
        "what that needs. A `hash` loads no store, matcher, pydantic, structlog or Rich: "
        "command-line values are coerced in plain Python (`childguard.cli.coerce`; Typer's "
        "pydantic adapters only for a value it is not sure of, so errors keep Typer's words), "
        "loggers load structlog on the first line that passes the level (`childguard.log`), "
        "and the consoles are made on first use. What is left is the interpreter, Typer, "
        "NumPy, Pillow and the hashing pipeline; `tests/cli/test_startup_imports.py` checks "
        "the list of what a `hash` loads. `every command module imported` is what each start "
        "cost before commands were loaded one at a time.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
