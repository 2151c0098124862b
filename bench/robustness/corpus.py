"""The robustness corpus: fetch Debian packages and PyPI wheels, pick their photos, prepare,
dedupe, split.

Everything lands under `.cache/robustness/`: `debs/` (the .deb files as fetched with
`apt-get download`), `pkgs/` (their contents, `dpkg-deb -x`), `wheels/` (the pinned
scikit-image and scikit-learn wheels as fetched with `pip download`; their sample photos
are read straight from the zip), `prepared/` (one JPEG-95 per photo, longest side at most
`MAX_SIDE`) and `manifest.json` (package, version, path, sha256 of the source bytes and of
the prepared file, licence, group, split). On reuse every sha256 is checked again; a
mismatch rebuilds that photo.

Groups: `general` (everyday photos and wallpapers) and `astro` (Stellarium deep-sky
images and the Hubble deep field, which look alike and often have low PDQ quality).
Tiles are not built.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.robustness.rcc import RccError, read_rcc
from childguard.signals.pdq import hamming_many, hexes_to_array, pdq_from_pixels

CACHE = Path(".cache/robustness")
MAX_SIDE = 512
NEAR_DUP_DISTANCE = 31
PACKAGES = (
    "gcompris-qt-data",
    "scratch",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "mate-backgrounds",
    "lxqt-themes",
    "plasma-workspace-wallpapers",
    "stellarium-data",
)
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")

# Sample photos inside PyPI wheels: distribution -> (pinned version, {path in the wheel:
# (group, licence)}). The licences are those the libraries' own docstrings and README give
# for each image; where they give none, the wheel's licence covers it. Drawings, synthetic
# test patterns, text scans and tiny images are left out, and so is motorcycle_right.png: it
# is the other view of motorcycle_left.png's stereo pair, the same scene at the same instant
# from a few centimetres away. PDQ (distance 88) does not see them as duplicates, but as a
# registered photo and a distractor they would count a correct match as a false positive
# (a first run with both gave 37 protected "false positives", every one this pair).
_SKIMAGE = "BSD-3-Clause (scikit-image wheel LICENSE.txt, Files: *)"
WHEELS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "scikit-image": (
        "0.26.0",
        {
            f"skimage/data/{name}": (group, licence)
            for name, group, licence in (
                ("astronaut.png", "general", "public domain (skimage.data.astronaut)"),
                ("brick.png", "general", "CC0-1.0 (skimage.data.brick)"),
                ("camera.png", "general", "CC0-1.0 (skimage.data.camera)"),
                ("cell.png", "general", "CC0-1.0 (skimage.data.cell)"),
                ("chelsea.png", "general", "CC0-1.0 (skimage.data.chelsea)"),
                ("clock_motion.png", "general", "public domain (skimage.data.clock)"),
                ("coffee.png", "general", "CC0-1.0 (skimage.data.coffee)"),
                ("coins.png", "general", "no known copyright restrictions (skimage.data.coins)"),
                ("grass.png", "general", "CC0-1.0 (skimage.data.grass)"),
                ("gravel.png", "general", "CC0-1.0 (skimage.data.gravel)"),
                ("ihc.png", "general", "no known copyright restrictions (skimage.data.ihc)"),
                ("moon.png", "general", _SKIMAGE),
                ("motorcycle_left.png", "general", _SKIMAGE),
                ("retina.jpg", "general", "CC0-1.0 (skimage.data.retina)"),
                ("rocket.jpg", "general", "public domain (skimage.data.rocket)"),
                ("hubble_deep_field.jpg", "astro", "public domain, NASA (skimage.data)"),
            )
        },
    ),
    "scikit-learn": (
        "1.9.1",
        {
            f"sklearn/datasets/images/{name}": (
                "general",
                "CC-BY-2.0 (sklearn/datasets/images/README.txt)",
            )
            for name in ("china.jpg", "flower.jpg")
        },
    ),
}


@dataclass
class Photo:
    id: str
    group: str  # general | astro
    package: str
    version: str
    path: str  # path inside the package (for rcc: bundle path + "!" + entry path)
    licence: str
    source_sha256: str
    prepared_sha256: str = ""
    width: int = 0
    height: int = 0
    pdq: str = ""
    quality: int = 0
    split: str = ""  # registered | distractor | duplicate

    def prepared_path(self, cache: Path) -> Path:
        return cache / "prepared" / f"{self.id}.jpg"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_packages(cache: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Download and unpack each package once; return {package: version}."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    versions: dict[str, str] = {}
    for pkg in packages:
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if not found:
            cmd = ["apt-get", "download", pkg]
            if subprocess.run(cmd, cwd=debs, capture_output=True).returncode != 0:
                subprocess.run(["apt-get", "update", "-qq"], check=True)
                subprocess.run(cmd, cwd=debs, check=True, capture_output=True)
            found = sorted(debs.glob(f"{pkg}_*.deb"))
        deb = found[-1]
        versions[pkg] = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        dest = cache / "pkgs" / pkg
        if not (dest / ".extracted").exists():
            dest.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
            (dest / ".extracted").write_text(versions[pkg])
    return versions


def fetch_wheels(cache: Path) -> dict[str, Path]:
    """Download each pinned wheel once (no dependencies); return {distribution: wheel path}."""
    dest = cache / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    wheels: dict[str, Path] = {}
    for dist, (version, _) in WHEELS.items():
        pattern = f"{dist.replace('-', '_')}-{version}-*.whl"
        found = sorted(dest.glob(pattern))
        if not found:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            cmd += ["--only-binary=:all:", "--dest", str(dest), f"{dist}=={version}"]
            subprocess.run(cmd, check=True, capture_output=True)
            found = sorted(dest.glob(pattern))
            if not found:
                raise RuntimeError(f"pip download {dist}=={version} left no wheel in {dest}")
        wheels[dist] = found[-1]
    return wheels


def _wheel_sources(wheel: Path, wanted: dict[str, tuple[str, str]]) -> Iterator[Source]:
    with zipfile.ZipFile(wheel) as archive:
        missing = sorted(set(wanted) - set(archive.namelist()))
        if missing:
            raise RuntimeError(f"{wheel.name} lacks {', '.join(missing)}")
        for path in sorted(wanted):
            group, licence = wanted[path]
            yield Source(group, path, _constant(archive.read(path)), licence)


def package_licence(root: Path, pkg: str) -> str:
    """The first `License:` field of the package's Debian copyright file."""
    copyright_file = root / "usr/share/doc" / pkg / "copyright"
    if copyright_file.exists():
        match = re.search(r"^License:\s*(\S.*)$", copyright_file.read_text(errors="replace"), re.M)
        if match:
            return match.group(1).strip()
    return f"see /usr/share/doc/{pkg}/copyright"


def _files(root: Path, pattern: str) -> Iterator[Path]:
    for p in sorted(root.glob(pattern)):
        if p.is_file() and not p.is_symlink() and p.suffix.lower() in _IMAGE_EXT:
            yield p


def _plasma(root: Path) -> Iterator[Path]:
    """The largest landscape image of each Plasma wallpaper (the others are its resizes)."""
    for wall in sorted((root / "usr/share/wallpapers").glob("*")):
        images = [p for p in _files(wall, "contents/images/*") if p.name != "screenshot.jpg"]
        if images:
            yield max(images, key=lambda p: p.stat().st_size)


@dataclass(frozen=True)
class Source:
    """One candidate image: its group, its path in the package, how to read it, and a
    licence of its own where the package's licence does not say it (wheel samples)."""

    group: str
    path: str
    load: Callable[[], bytes]
    licence: str | None = None


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _rcc_sources(root: Path) -> Iterator[Source]:
    for bundle in sorted((root / "usr/share/gcompris-qt/rcc").glob("*.rcc")):
        try:
            entries = read_rcc(bundle.read_bytes())
        except RccError:
            continue
        for entry in entries:
            if entry.path.lower().endswith((".webp", ".jpg", ".jpeg")):
                rel = f"{bundle.relative_to(root)}!{entry.path}"
                yield Source("general", rel, _constant(entry.data))


def iter_sources(
    cache: Path, wheels: dict[str, Path] | None = None
) -> Iterator[tuple[str, Source]]:
    """(package, source) for every candidate image in the corpus packages and wheels."""
    pkgs = cache / "pkgs"
    globs: dict[str, list[str]] = {
        "scratch": ["usr/share/scratch/Media/Backgrounds/**/*"],
        "lomiri-wallpapers-16.04": ["usr/share/**/*"],
        "lomiri-wallpapers-20.04": ["usr/share/**/*"],
        "mate-backgrounds": ["usr/share/backgrounds/mate/nature/*"],
        "lxqt-themes": ["usr/share/lxqt/wallpapers/*"],
        "stellarium-data": ["usr/share/stellarium/nebulae/default/*"],
    }
    for pkg in PACKAGES:
        root = pkgs / pkg
        if pkg == "gcompris-qt-data":
            for item in _rcc_sources(root):
                yield pkg, item
            continue
        paths = (
            _plasma(root)
            if pkg == "plasma-workspace-wallpapers"
            else (p for g in globs[pkg] for p in _files(root, g))
        )
        group = "astro" if pkg == "stellarium-data" else "general"
        for p in paths:
            yield pkg, Source(group, str(p.relative_to(root)), p.read_bytes)
    for dist, wheel in sorted((wheels or {}).items()):
        for source in _wheel_sources(wheel, WHEELS[dist][1]):
            yield dist, source


def _accept(img: Image.Image, group: str) -> bool:
    """Photos only: drawings with transparency and small icons are left out."""
    if group == "general" and ("A" in img.getbands() or img.mode in ("P", "LA")):
        return False
    return min(img.size) >= (120 if group == "astro" else 200)


def prepare_photo(data: bytes, group: str) -> Image.Image | None:
    with Image.open(io.BytesIO(data)) as img:
        if not _accept(img, group):
            return None
        rgb = img.convert("RGB")
    rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return rgb


def load_pixels(photo: Photo, cache: Path = CACHE) -> np.ndarray:
    with Image.open(photo.prepared_path(cache)) as img:
        return np.asarray(img.convert("RGB"))


def build_corpus(
    cache: Path = CACHE, *, seed: int = 5, log: Callable[[str], None] = print
) -> list[Photo]:
    """Fetch, prepare, dedupe and split; reuse and re-verify an existing manifest."""
    versions = fetch_packages(cache)
    wheels = fetch_wheels(cache)
    versions.update({dist: version for dist, (version, _) in WHEELS.items()})
    manifest = cache / "manifest.json"
    known: dict[str, Photo] = {}
    if manifest.exists():
        for row in json.loads(manifest.read_text())["photos"]:
            known[row["source_sha256"] + row["path"]] = Photo(**row)
    (cache / "prepared").mkdir(parents=True, exist_ok=True)
    licences = {pkg: package_licence(cache / "pkgs" / pkg, pkg) for pkg in PACKAGES}
    photos: list[Photo] = []
    rebuilt = 0
    for pkg, source in iter_sources(cache, wheels):
        group, path = source.group, source.path
        data = source.load()
        digest = sha256(data)
        old = known.get(digest + path)
        if old is not None and old.prepared_sha256:
            prepared = old.prepared_path(cache)
            if prepared.exists() and sha256(prepared.read_bytes()) == old.prepared_sha256:
                photos.append(old)
                continue
        if old is not None and not old.prepared_sha256:
            continue  # rejected before (not a photo); the source bytes are unchanged
        try:
            img = prepare_photo(data, group)
        except (OSError, ValueError) as exc:
            log(f"skip {pkg}:{path}: {exc}")
            img = None
        photo = Photo(
            id=f"{pkg[:8]}-{digest[:12]}",
            group=group,
            package=pkg,
            version=versions[pkg],
            path=path,
            licence=source.licence or licences[pkg],
            source_sha256=digest,
        )
        if img is not None:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=95)
            photo.prepared_path(cache).write_bytes(buf.getvalue())
            photo.prepared_sha256 = sha256(buf.getvalue())
            photo.width, photo.height = img.size
            photo.pdq, photo.quality = pdq_from_pixels(np.asarray(img))
            rebuilt += 1
        photos.append(photo)
    usable = [p for p in photos if p.prepared_sha256]
    _dedupe_and_split(usable, seed)
    rows = [asdict(p) for p in photos]
    manifest.write_text(json.dumps({"versions": versions, "photos": rows}, indent=1))
    log(f"corpus: {len(usable)} photos ({rebuilt} prepared now), manifest {manifest}")
    return [p for p in usable if p.split in ("registered", "distractor")]


def _dedupe_and_split(photos: list[Photo], seed: int) -> None:
    """Exact and PDQ near-duplicates (same aspect ratio) collapse to the largest copy."""
    photos.sort(key=lambda p: (-(p.width * p.height), p.id))
    kept: list[Photo] = []
    seen: set[str] = set()
    for p in photos:
        p.split = ""
        if p.source_sha256 in seen:
            p.split = "duplicate"
            continue
        if kept:
            dist = hamming_many(hexes_to_array([p.pdq])[0], hexes_to_array([k.pdq for k in kept]))
            aspect = p.width / p.height
            for close in np.flatnonzero(dist <= NEAR_DUP_DISTANCE).tolist():
                k = kept[close]
                if abs(k.width / k.height - aspect) / aspect < 0.03:
                    p.split = "duplicate"
                    break
        if not p.split:
            kept.append(p)
            seen.add(p.source_sha256)
    rng = random.Random(seed)
    for group in sorted({p.group for p in kept}):
        members = sorted((p for p in kept if p.group == group), key=lambda p: p.id)
        rng.shuffle(members)
        half = len(members) // 2
        for i, p in enumerate(members):
            p.split = "registered" if i < half else "distractor"
