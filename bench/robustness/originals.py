# Owns the originals check: photos registered from their full-size files and queried as
# re-posts through the product's own decoding, end to end.
"""Protected photos registered from their originals, re-posts queried from their bytes.

`python -m bench.robustness.originals [--transforms ...] [--side PX]`

The robustness harness hands the robust module its own pixels (photos of at most 512 px,
grids of 1,080 px); the product decodes bytes first (`childguard.media.Content`). This check
takes the photos `make photos` unpacks (about 45 JPEGs of 1 to 16 megapixels, 4:3 to 16:9),
registers every other one from its original bytes as `protect register` signs it
(`protect.register.protected_signature`), and queries each photo under each transform, made
from a copy of at most `--side` px (grids on 1,080 px, their other cells from the photos not
registered), saved as a JPEG of quality 88 and hashed the hashing workers' way
(`hash_bytes(robust=True, features=True)`, pickled as they send it). Prints, per transform,
the registered photos found and the false matches (a wrong photo, or any match of a photo not
registered), and the mean cost of a query against plain hashing of the same bytes in the same
run (`hash_bytes` without robust views: exact hashes and PDQ, what `childguard hash` does).
`make bench-originals` records the result in docs/benchmarks.md (section `originals`).
"""

from __future__ import annotations

import argparse
import io
import pickle
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench._common import publish
from bench.robustness.transforms import apply
from childguard.media import Content
from childguard.pipeline import hash_bytes
from childguard.protect.register import protected_signature
from childguard.robust.protected import ProtectedIndex

PHOTOS = Path(".cache/photos")
DEFAULT_TRANSFORMS = (
    "jpeg75",
    "crop20-off",
    "rot+10",
    "hflip",
    "screenshot",
    "captions",
    "grid2x2-gutter",
    "grid3x3",
    "grid3x3-gutter",
    "grid4x4-gutter",
    "grid-uneven",
    "mirror+grey+crop15",
    "crop20off+rot8",
    "stickers+crop25",
)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def run(transforms: list[str], side: int, photos: Path = PHOTOS) -> str:
    """The check's report (markdown) for `transforms` on the photos under `photos`."""
    files = sorted(photos.glob("**/*.jpg"))
    if not files:
        raise SystemExit(f"no photos under {photos}; run `make photos`")
    originals = {f.stem[:24]: f for f in files}
    ids = list(originals)
    registered, others = ids[::2], ids[1::2]
    index = ProtectedIndex()
    t0 = time.perf_counter()
    for pid in registered:
        index.add(pid, protected_signature(Content(originals[pid].read_bytes(), origin=pid)))
    sign_s = time.perf_counter() - t0
    copies = {}
    for pid, path in originals.items():
        im = Image.open(path).convert("RGB")
        im.thumbnail((side, side), Image.Resampling.LANCZOS)
        copies[pid] = im
    lines = [
        f"{len(registered)} photos registered from their originals ({sign_s:.1f} s), "
        f"{len(others)} not; queries from copies of at most {side} px, JPEG 88",
        "",
        "| transform | found | false matches |",
        "|---|---|---|",
    ]
    costs: list[float] = []
    plain: list[float] = []
    for name in transforms:
        found = false = 0
        for pid in registered + others:
            fillers = [copies[o] for o in others if o != pid][:15]
            data = _jpeg(apply(name, copies[pid], pid, fillers), 88)
            t = time.perf_counter()
            hash_bytes(data)
            plain.append(1e3 * (time.perf_counter() - t))
            t = time.perf_counter()
            record = hash_bytes(data, robust=True, features=True)
            features = pickle.loads(pickle.dumps(record.features))
            hits = index.search(features) if features is not None else []
            costs.append(1e3 * (time.perf_counter() - t))
            best = hits[0] if hits and hits[0].match else None
            if best is not None and (pid not in registered or best.photo != pid):
                false += 1
            elif best is not None:
                found += 1
        lines.append(f"| {name} | {found}/{len(registered)} | {false} |")
        print(lines[-1], flush=True)
    cost, base = float(np.mean(costs)), float(np.mean(plain))
    lines += [
        "",
        f"Mean cost of a query (decode, views, features, search): {cost:.1f} ms, "
        f"{cost / base:.1f}x plain hashing of the same bytes ({base:.1f} ms, exact hashes and "
        "PDQ) in the same run.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transforms", nargs="*", default=list(DEFAULT_TRANSFORMS))
    parser.add_argument("--side", type=int, default=1280, help="longest side of the re-posts")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/")
    args = parser.parse_args(argv)
    text = run(args.transforms, args.side)
    publish(
        "originals",
        "## Protected photos registered from their originals, re-posts from bytes",
        "make bench-originals",
        text,
        record=not args.no_docs,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
