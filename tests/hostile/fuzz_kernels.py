"""Seeded mutation fuzzing of the C kernels (`childguard._jpegdc`, `childguard.index._mih`) built
with AddressSanitizer and UndefinedBehaviorSanitizer.

    python tests/hostile/fuzz_kernels.py --build DIR        # compile both kernels into DIR
    LD_PRELOAD=<libasan> python tests/hostile/fuzz_kernels.py --run DIR --seed 1 --iterations N

`--run` loads the sanitized kernels in place of the installed ones and drives them:
progressive JPEGs mutated at random (byte flips, truncations, zeroed runs, header segments
rewritten, markers planted in the scans) through `decode_dc`, whose result is also checked
(None, or an RGB array); and random PDQ indexes (hashes near each other, incremental adds,
removes, every prefix width) searched at random radii by both strategies, every distance
within the radius; and random inverted files, some malformed, through the vote kernel's
search, cross matches and distance matrices on every path the CPU runs. A sanitizer report
aborts the process (exit code non-zero); `make fuzz-kernels` runs many iterations, the suite
(`test_fuzz_kernels.py`) a short tier.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import io
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KERNELS = {
    "childguard._jpegdc": ROOT / "src" / "childguard" / "_jpegdc.c",
    "childguard.index._mih": ROOT / "src" / "childguard" / "index" / "_mih.c",
    "childguard.robust._votes": ROOT / "src" / "childguard" / "robust" / "_votes.c",
}
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]


def build(out: Path) -> list[Path]:
    """Compile each kernel with the sanitizers into `out` (one .so per module)."""
    import numpy

    out.mkdir(parents=True, exist_ok=True)
    include = [f"-I{sysconfig.get_paths()['include']}", f"-I{numpy.get_include()}"]
    built = []
    for module, source in KERNELS.items():
        target = out / (module.rsplit(".", 1)[1] + ".so")
        cmd = ["gcc", "-O1", "-g", "-std=c11", "-shared", "-fPIC", *SANITIZE, *include]
        subprocess.run([*cmd, str(source), "-o", str(target)], check=True)
        built.append(target)
    return built


def _load(out: Path) -> None:
    """Put the sanitized kernels in sys.modules under the installed modules' names."""
    for module in KERNELS:
        path = out / (module.rsplit(".", 1)[1] + ".so")
        loader = importlib.machinery.ExtensionFileLoader(module, str(path))
        spec = importlib.util.spec_from_file_location(module, path, loader=loader)
        assert spec is not None
        kernel = importlib.util.module_from_spec(spec)
        loader.exec_module(kernel)
        sys.modules[module] = kernel


def _progressive(rng: random.Random) -> bytes:
    import numpy as np
    from PIL import Image

    w, h = rng.randint(8, 900), rng.randint(8, 700)
    base = np.random.default_rng(rng.randrange(2**32)).integers(0, 255, (4, 4, 3), np.uint8)
    image = Image.fromarray(base).resize((w, h))
    if rng.random() < 0.3:
        image = image.convert("L")
    buf = io.BytesIO()
    image.save(buf, "JPEG", progressive=True, quality=rng.randint(20, 95))
    return buf.getvalue()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    from hostile.corpus import flip, jpeg_structural, truncate, zero

    mutate = rng.choice([flip, truncate, zero, jpeg_structural, jpeg_structural])
    out = mutate(rng, data)
    return mutate(rng, out) if rng.random() < 0.3 and len(out) > 4 else out


def fuzz_jpegdc(rng: random.Random, iterations: int) -> int:
    import childguard._jpegdc as kernel
    from childguard.media import jpeg_stream_shortfall

    bases = [_progressive(rng) for _ in range(8)]
    decoded = 0
    for _ in range(iterations):
        data = _mutate(rng, rng.choice(bases))
        result = kernel.decode_dc(data, 120_000_000)
        if result is not None:
            decoded += 1
            assert result.ndim == 3 and result.shape[2] == 3, result.shape
            assert jpeg_stream_shortfall(data) is None or result.size >= 0
        luma = kernel.decode_dc(data, 120_000_000, True)
        assert (luma is None) == (result is None)
        if luma is not None and result is not None:
            assert luma.ndim == 2 and luma.shape == result.shape[:2]
            kernel.pdq(luma)
            h, w = luma.shape
            size = (min(65536, max(5, 8 * w)), min(65536, max(5, 8 * h)))
            kernel.pdq_resized(luma, size, (0.0, 0.0, float(w), float(h)))
    return decoded


def fuzz_mih(rng: random.Random, iterations: int) -> int:
    import numpy as np

    from childguard.index.pdq import PdqIndex

    checked = 0
    for _ in range(max(1, iterations // 20)):
        gen = np.random.default_rng(rng.randrange(2**32))
        n = rng.randint(0, 3000)
        centre = gen.integers(0, 256, 32, dtype=np.uint8)
        noise = gen.integers(0, 256, (n, 32), dtype=np.uint8) & gen.integers(
            0, 256, (n, 32), dtype=np.uint8
        )
        hashes = (centre ^ (noise if rng.random() < 0.5 else noise & 0x11)).astype(np.uint8)
        ids = gen.integers(0, max(1, n // 2) + 1, n, dtype=np.int64)
        index = PdqIndex.build(ids, hashes, prefix_bits=rng.choice([None, 1, 8, 16, 24]))
        extra = gen.integers(0, 256, (rng.randint(0, 200), 32), dtype=np.uint8)
        index.add(gen.integers(0, 10_000, extra.shape[0], dtype=np.int64), extra)
        if n and rng.random() < 0.5:
            index.remove(ids[: rng.randint(0, n)])
        queries = np.vstack([centre[None, :], gen.integers(0, 256, (3, 32), dtype=np.uint8)])
        for strategy in ("mih", "linear"):
            radius = rng.choice([0, 1, 8, 31, 63, 128, 256])
            result = index.search(queries, radius, strategy=strategy)
            assert len(result.ids) == len(result.distances)
            assert all(0 <= d <= radius for d in result.distances.tolist())
            checked += 1
    return checked


def fuzz_votes(rng: random.Random, iterations: int) -> int:
    """Random inverted files, some malformed: the kernel answers in shape or refuses with a
    ValueError, never reads or writes outside its arrays."""
    import numpy as np

    from childguard.robust import _votes as kernel

    answered = 0
    paths = kernel.paths()  # every distance path this CPU runs: scalar, AVX2, AVX-512
    for _ in range(max(1, iterations // 10)):
        path = rng.choice(paths)
        gen = np.random.default_rng(rng.randrange(2**32))
        n_lists, n_codes = rng.randint(0, 40), rng.randint(0, 600)
        centres = gen.integers(0, 256, (n_lists, 32), dtype=np.uint8)
        codes = gen.integers(0, 256, (n_codes, 32), dtype=np.uint8)
        ids_len = max(0, n_codes + rng.choice([0, 0, 0, 1, -1]))
        ids = gen.integers(-5, 10_000, ids_len, dtype=np.int64)
        cuts = np.sort(gen.integers(0, n_codes + 1, max(0, n_lists - 1)))
        offsets = np.concatenate([[0], cuts, [n_codes]]).astype(np.int64)
        if rng.random() < 0.2 and len(offsets):
            offsets[rng.randrange(len(offsets))] = rng.randint(-3, n_codes + 3)
        queries = gen.integers(0, 256, (rng.randint(0, 30), 32), dtype=np.uint8)
        nprobe, k = rng.randint(-1, 70), rng.randint(-1, 70)
        try:
            dist, found = kernel.search(queries, centres, codes, ids, offsets, nprobe, k, path)
        except ValueError:
            pass
        else:
            answered += 1
            assert dist.shape == found.shape == (len(queries), k)
            known = set(ids.tolist()) | {-1}
            assert all(i in known for i in found.ravel().tolist())
            assert all(0 <= d <= 256 or d == 2**31 - 1 for d in dist.ravel().tolist())
        if n_lists:
            assert kernel.assign(codes, centres).shape == (n_codes,)
        a, b = kernel.cross(queries, codes, rng.randint(-1, 300), path)
        assert len(a) == len(b) and all(0 <= i < n_codes for i in b.tolist())
        matrix = kernel.distances(queries, codes, path)
        assert matrix.shape == (len(queries), n_codes)
        assert ((matrix >= 0) & (matrix <= 256)).all()
    return answered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, help="compile the sanitized kernels into this dir")
    parser.add_argument("--run", type=Path, help="fuzz the sanitized kernels in this dir")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    if args.build:
        for path in build(args.build):
            print(f"built {path}")
    if args.run:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for hostile.*
        _load(args.run)
        rng = random.Random(args.seed)
        decoded = fuzz_jpegdc(rng, args.iterations)
        searched = fuzz_mih(rng, args.iterations)
        voted = fuzz_votes(rng, args.iterations)
        print(
            f"seed {args.seed}: {args.iterations} JPEG mutants ({decoded} decoded), "
            f"{searched} index searches, {voted} vote searches, no sanitizer report"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
