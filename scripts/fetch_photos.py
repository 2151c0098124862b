#!/usr/bin/env python3
"""Fetch licence-clean real photos for tests and benchmarks from Debian packages.

Runs with the plain system Python (standard library only): `apt-get download`
fetches the .deb files into a cache, `dpkg-deb -x` extracts them, and the photos
are copied to `<dest>/<package>/` with a `manifest.csv` recording, for every
photo, the package, its version, the original path, the sha256, the size in
pixels and the licence taken from the package's Debian copyright file.
`<dest>/.ready` is written last, so an interrupted run is simply redone.

Nothing here runs at test time: `make photos` calls it once, at setup.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class PhotoSource:
    """A Debian package and which of its files are photos."""

    package: str
    # Directories inside the package whose files we take (relative to the extracted root).
    folders: tuple[str, ...]
    # KDE-style wallpaper packages (`<Name>/contents/images/<W>x<H>.jpg`): keep the
    # largest size of each wallpaper and name it `<Name>.jpg`.
    kde_layout: bool = False


SOURCES = (
    PhotoSource("lomiri-wallpapers-16.04", ("usr/share/backgrounds",)),
    PhotoSource("mate-backgrounds", ("usr/share/backgrounds/mate/nature",)),
    PhotoSource("plasma-workspace-wallpapers", ("usr/share/wallpapers",), kde_layout=True),
)

MANIFEST_FIELDS = (
    "package",
    "version",
    "original_path",
    "file",
    "sha256",
    "bytes",
    "width",
    "height",
    "licence",
)


class FetchError(RuntimeError):
    """Something the user must fix (missing tool, no network at setup time)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=Path(".cache/photos"))
    parser.add_argument(
        "--debs",
        type=Path,
        default=None,
        help="where downloaded .deb files are kept (default: DEST/../debs)",
    )
    parser.add_argument(
        "--force", action="store_true", help="fetch again even if DEST/.ready exists"
    )
    args = parser.parse_args(argv)
    dest: Path = args.dest.resolve()
    debs: Path = (args.debs or dest.parent / "debs").resolve()
    try:
        count = fetch(dest, debs, force=args.force)
    except FetchError as exc:
        print(f"fetch_photos: error: {exc}", file=sys.stderr)
        return 2
    print(f"fetch_photos: {count} photos in {dest}")
    return 0


def fetch(dest: Path, debs: Path, *, force: bool = False) -> int:
    """Populate `dest` with photos and a manifest; returns the number of photos."""
    ready = dest / ".ready"
    recipe = repr(SOURCES)
    if ready.exists() and not force and ready.read_text().splitlines()[1:2] == [recipe]:
        ready.touch()  # newer than this script, so make sees the target as done
        with (dest / "manifest.csv").open(newline="") as fh:
            return sum(1 for _ in csv.DictReader(fh))
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise FetchError(
                f"`{tool}` is not available; fetch_photos needs a Debian or Ubuntu system with apt "
                "(or copy a ready .cache/photos folder from a machine that has one)"
            )
    ready.unlink(missing_ok=True)
    debs.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    for source in SOURCES:
        deb = download(source.package, debs)
        rows.extend(extract_photos(source, deb, dest))
    rows.sort(key=lambda r: r["file"])
    tmp = dest / "manifest.csv.tmp"
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(dest / "manifest.csv")
    ready.write_text(f"{len(rows)} photos\n{recipe}\n")
    return len(rows)


def download(package: str, debs: Path) -> Path:
    """The package's .deb in `debs`, downloaded with apt-get if not already there."""
    existing = sorted(debs.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    result = _apt_download(package, debs)
    if result.returncode != 0 and _looks_like_missing_lists(result.stderr):
        print(
            f"fetch_photos: package lists missing for {package}; running apt-get update",
            file=sys.stderr,
        )
        update = subprocess.run(["apt-get", "update"], capture_output=True, text=True, check=False)
        if update.returncode != 0:
            raise FetchError(f"apt-get update failed: {update.stderr.strip()[-500:]}")
        result = _apt_download(package, debs)
    if result.returncode != 0:
        raise FetchError(f"apt-get download {package} failed: {result.stderr.strip()[-500:]}")
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise FetchError(f"apt-get download {package} reported success but left no .deb in {debs}")
    return found[-1]


def _apt_download(package: str, debs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", "download", "-q", package],
        cwd=debs,
        capture_output=True,
        text=True,
        check=False,
    )


def _looks_like_missing_lists(stderr: str) -> bool:
    text = stderr.lower()
    return "unable to locate package" in text or "has no installation candidate" in text


def extract_photos(source: PhotoSource, deb: Path, dest: Path) -> list[dict[str, str]]:
    """Extract `deb` and copy its photos into `dest/<package>/`; returns manifest rows."""
    version = _deb_field(deb, "Version")
    out_dir = dest / source.package
    with tempfile.TemporaryDirectory(prefix="cg-photos-") as tmp:
        root = Path(tmp)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        licences = parse_copyright(root / "usr/share/doc" / source.package / "copyright")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        rows = []
        for folder in source.folders:
            picks = _kde_picks(root / folder) if source.kde_layout else _flat_picks(root / folder)
            for path, name in picks:
                target = out_dir / name
                shutil.copyfile(path, target)
                data = target.read_bytes()
                size = image_size(data)
                rel = str(path.relative_to(root))
                rows.append(
                    {
                        "package": source.package,
                        "version": version,
                        "original_path": "/" + rel,
                        "file": f"{source.package}/{name}",
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "bytes": str(len(data)),
                        "width": str(size[0]) if size else "",
                        "height": str(size[1]) if size else "",
                        "licence": licence_for(rel, licences),
                    }
                )
    if not rows:
        raise FetchError(f"{source.package} held no photos under {', '.join(source.folders)}")
    return rows


def _is_photo(path: Path) -> bool:
    return not path.is_symlink() and path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES


def _flat_picks(folder: Path) -> list[tuple[Path, str]]:
    return [(p, p.name) for p in sorted(folder.iterdir()) if _is_photo(p)]


def _kde_picks(folder: Path) -> list[tuple[Path, str]]:
    """The largest JPEG of each `<Name>/contents/images/<W>x<H>.jpg` wallpaper."""
    picks = []
    for wallpaper in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
        images = wallpaper / "contents" / "images"
        if not images.is_dir():
            continue
        sized = []
        for p in images.iterdir():
            w, _, h = p.stem.partition("x")
            if (
                _is_photo(p)
                and p.suffix.lower() in (".jpg", ".jpeg")
                and w.isdigit()
                and h.isdigit()
            ):
                sized.append((int(w) * int(h), p))
        if sized:
            picks.append((max(sized)[1], f"{wallpaper.name}.jpg"))
    return picks


def _deb_field(deb: Path, field: str) -> str:
    out = subprocess.run(
        ["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def parse_copyright(path: Path) -> list[tuple[list[str], str]]:
    """(file patterns, licence name) pairs from a machine-readable Debian copyright file."""
    if not path.exists():
        return []
    pairs: list[tuple[list[str], str]] = []
    patterns: list[str] = []
    in_files = False
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            in_files = False
            continue
        if line.startswith("Files:"):
            patterns = line.split(":", 1)[1].split()
            in_files = True
        elif in_files and line[:1] in (" ", "\t") and ":" not in line:
            patterns.extend(line.split())
        elif line.startswith("License:") and patterns:
            pairs.append((patterns, line.split(":", 1)[1].strip()))
            patterns = []
            in_files = False
        else:
            in_files = False
    return pairs


def licence_for(installed_path: str, licences: list[tuple[list[str], str]]) -> str:
    """The licence of an installed file: the last matching stanza wins, as DEP-5 says.

    Patterns name upstream paths (`16.04/x.jpg`, `nature/x.jpg`) while we hold the
    installed path, so a pattern matches on its file name (packaging stanzas,
    `debian/*`, are skipped).
    """
    best = "see /usr/share/doc copyright"
    name = Path(installed_path).name
    for patterns, licence in licences:
        for pattern in patterns:
            applies = pattern == "*" or (
                not pattern.startswith("debian/")
                and (
                    fnmatch.fnmatch(installed_path, "*/" + pattern)
                    or fnmatch.fnmatch(name, Path(pattern).name)
                )
            )
            if applies:
                best = licence
    return best


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height read from a PNG or JPEG header (None if not found)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + length
    return None


if __name__ == "__main__":
    sys.exit(main())
