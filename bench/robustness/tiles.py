# Owns the robustness benchmark's distractor tiles: square pieces cut from the distractor photos.
"""Distractor tiles: square pieces of the distractor photos, cut from their source images.

The false-positive rate needs at least 50,000 distractor queries per group, far more
distinct photos than the packages ship. Tiles of the distractor photos make up the
difference under three rules:

- a tile records its parent (`Tile.parent`, the corpus photo's id) and is cut only from a
  photo whose split is `distractor`: a registered photo's tiles are never built, so a photo
  and its own tiles are never on both sides;
- tiles are cut from the *source* image (full resolution), as a square grid of side
  `max(TILE_MIN[group], min(w, h) // 4)` centred on the image, without overlap, and only when
  at least 2 x 2 fit; each tile is then prepared as the photos are (longest side at most
  `MAX_SIDE`, JPEG 95);
- a tile whose PDQ quality is under `MIN_QUALITY[group]` is dropped (a flat patch of sky or
  wall tests nothing), and so is a tile within PDQ distance 31 of any registered photo (a
  wallpaper shipped twice at different crops would count a true copy as a false match).

Everything lands under `.cache/robustness/tiles/` with `tiles.json` (parent, parent's source
sha256, the box in source pixels, sha256 of the prepared tile, PDQ, quality); on reuse every
prepared file's sha256 is checked again and a mismatch cuts that parent's tiles again (all
of them when the tile rules changed).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.robustness.corpus import CACHE, MAX_SIDE, Photo, iter_sources
from childguard.signals.pdq import hamming_many, hexes_to_array, pdq_from_pixels

TILE_MIN = {"general": 256, "astro": 128}
MIN_QUALITY = {"general": 50, "astro": 20}
MIN_GRID = 2
NEAR_REGISTERED = 31
TILE_PACKAGE = "tile"  # Photo.package of a tile seen as a distractor (as_photo)
Image.MAX_IMAGE_PIXELS = 200_000_000  # the largest wallpapers are 5120 x 2880


@dataclass
class Tile:
    id: str
    parent: str  # the corpus photo this tile was cut from (always a distractor)
    group: str
    parent_source_sha256: str
    box: tuple[int, int, int, int]  # in the source image's pixels
    prepared_sha256: str = ""
    pdq: str = ""
    quality: int = 0
    kept: bool = True  # False: under MIN_QUALITY or too close to a registered photo

    def prepared_path(self, cache: Path) -> Path:
        return cache / "tiles" / f"{self.id}.jpg"


def tile_boxes(width: int, height: int, group: str) -> list[tuple[int, int, int, int]]:
    """The tile grid of a source image: squares of side max(TILE_MIN, min side // 4),
    centred, without overlap; none when fewer than 2 x 2 fit."""
    side = max(TILE_MIN[group], min(width, height) // 4)
    nx, ny = width // side, height // side
    if nx < MIN_GRID or ny < MIN_GRID:
        return []
    x0, y0 = (width - nx * side) // 2, (height - ny * side) // 2
    return [
        (x0 + i * side, y0 + j * side, x0 + (i + 1) * side, y0 + (j + 1) * side)
        for j in range(ny)
        for i in range(nx)
    ]


def _prepare(img: Image.Image) -> bytes:
    out = img.convert("RGB")
    out.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def cut_tiles(data: bytes, parent: Photo) -> list[tuple[Tile, bytes]]:
    """Every tile of one distractor's source bytes, prepared (no filtering)."""
    if parent.split != "distractor":
        raise ValueError(f"{parent.id} is {parent.split or 'unsplit'}: only distractors are tiled")
    with Image.open(io.BytesIO(data)) as src:
        img = src.convert("RGB")
    out: list[tuple[Tile, bytes]] = []
    for i, box in enumerate(tile_boxes(img.width, img.height, parent.group)):
        jpeg = _prepare(img.crop(box))
        with Image.open(io.BytesIO(jpeg)) as t:
            pdq, quality = pdq_from_pixels(np.asarray(t.convert("RGB")))
        tile = Tile(
            id=f"{parent.id}-t{i:02d}",
            parent=parent.id,
            group=parent.group,
            parent_source_sha256=parent.source_sha256,
            box=box,
            prepared_sha256=hashlib.sha256(jpeg).hexdigest(),
            pdq=pdq,
            quality=quality,
        )
        out.append((tile, jpeg))
    return out


def _mark(tiles: Iterable[Tile], registered: list[Photo]) -> None:
    packed = hexes_to_array([p.pdq for p in registered]) if registered else None
    for t in tiles:
        t.kept = t.quality >= MIN_QUALITY[t.group]
        if t.kept and packed is not None:
            t.kept = int(hamming_many(hexes_to_array([t.pdq])[0], packed).min()) > NEAR_REGISTERED


def build_tiles(
    photos: list[Photo], cache: Path = CACHE, *, log: Callable[[str], None] = print
) -> list[Tile]:
    """Tiles of every distractor in `photos` (corpus photos, as build_corpus returns them);
    reuses and re-verifies `tiles.json`. Returns the kept tiles, sorted by id."""
    folder = cache / "tiles"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "tiles.json"
    known: dict[str, list[Tile]] = {}
    rules = {"tile_min": TILE_MIN, "max_side": MAX_SIDE}
    stored = json.loads(manifest.read_text()) if manifest.exists() else {}
    if stored.get("rules") == rules:
        for row in stored["tiles"]:
            row["box"] = tuple(row["box"])
            t = Tile(**row)
            known.setdefault(t.parent_source_sha256 + t.parent, []).append(t)
    parents = {p.source_sha256 + p.id: p for p in photos if p.split == "distractor"}
    tiles: list[Tile] = []
    todo: dict[str, Photo] = {}
    for key, parent in parents.items():
        old = known.get(key)
        if old is not None and all(
            t.prepared_path(cache).exists()
            and hashlib.sha256(t.prepared_path(cache).read_bytes()).hexdigest() == t.prepared_sha256
            for t in old
        ):
            tiles += old
        else:
            todo[parent.source_sha256] = parent
    if todo:
        for _pkg, source in iter_sources(cache, _wheels(cache)):
            data = source.load()
            digest = hashlib.sha256(data).hexdigest()
            if digest not in todo:
                continue
            parent = todo.pop(digest)
            for tile, jpeg in cut_tiles(data, parent):
                tile.prepared_path(cache).write_bytes(jpeg)
                tiles.append(tile)
        if todo:
            log(f"tiles: {len(todo)} distractors' sources not found; their tiles are left out")
    _mark(tiles, [p for p in photos if p.split == "registered"])
    tiles.sort(key=lambda t: t.id)
    manifest.write_text(json.dumps({"rules": rules, "tiles": [asdict(t) for t in tiles]}, indent=1))
    kept = [t for t in tiles if t.kept]
    log(f"tiles: {len(kept)} kept of {len(tiles)} cut from {len(parents)} distractors")
    return kept


def _wheels(cache: Path) -> dict[str, Path]:
    from bench.robustness.corpus import WHEELS

    found: dict[str, Path] = {}
    for dist, (version, _) in WHEELS.items():
        hits = sorted((cache / "wheels").glob(f"{dist.replace('-', '_')}-{version}-*.whl"))
        if hits:
            found[dist] = hits[-1]
    return found


def as_photo(tile: Tile) -> Photo:
    """The tile as a corpus distractor (for the run's workers); `path` names the parent."""
    return Photo(
        id=tile.id,
        group=tile.group,
        package=TILE_PACKAGE,
        version="",
        path=f"{tile.parent}!{tile.box}",
        licence="as its parent",
        source_sha256=tile.parent_source_sha256,
        prepared_sha256=tile.prepared_sha256,
        pdq=tile.pdq,
        quality=tile.quality,
        split="distractor",
    )


def select_tiles(tiles: list[Tile], parents: set[str], needed: int) -> list[Tile]:
    """Up to `needed` tiles of the given parents, spread over them: every parent's first
    tile, then every parent's second tile, and so on (ids in order)."""
    by_parent: dict[str, list[Tile]] = {}
    for t in sorted(tiles, key=lambda t: t.id):
        if t.parent in parents:
            by_parent.setdefault(t.parent, []).append(t)
    out: list[Tile] = []
    rank = 0
    while len(out) < needed and any(len(v) > rank for v in by_parent.values()):
        for parent in sorted(by_parent):
            if rank < len(by_parent[parent]) and len(out) < needed:
                out.append(by_parent[parent][rank])
        rank += 1
    return out


def photo_pixels(photo: Photo, cache: Path = CACHE) -> np.ndarray:
    """The prepared pixels of a corpus photo or of a tile (`as_photo`)."""
    path = (
        cache / "tiles" / f"{photo.id}.jpg"
        if photo.package == TILE_PACKAGE
        else photo.prepared_path(cache)
    )
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))
