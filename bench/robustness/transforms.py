# Owns the robustness benchmark's image transforms and the issue-19 target of each.
"""Seeded, reproducible image transforms that mimic how photos get re-posted.

Each transform is a pure function of (image, rng, fillers): the rng is derived from
(transform name, photo id) by `rng_for`, so a rerun produces identical pixels.
`fillers` are other photos, used only by the collage and the grids.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Transform = Callable[[Image.Image, np.random.Generator, Sequence[Image.Image]], Image.Image]

# Side of the square canvas the grids are laid out on, in pixels (a common feed post size).
GRID_SIDE = 1080


def rng_for(transform: str, photo_id: str, seed: int = 5) -> np.random.Generator:
    return np.random.default_rng(
        [seed, zlib.crc32(transform.encode()), zlib.crc32(photo_id.encode())]
    )


@lru_cache(maxsize=128)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def scale(img: Image.Image, factor: float) -> Image.Image:
    w, h = img.size
    return img.resize(
        (max(8, round(w * factor)), max(8, round(h * factor))), Image.Resampling.BILINEAR
    )


def thumbnail(img: Image.Image, side: int) -> Image.Image:
    out = img.copy()
    out.thumbnail((side, side), Image.Resampling.BILINEAR)
    return out


def stretch(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    fx = 1.0 + float(rng.uniform(0.2, 0.35)) * (1 if rng.random() < 0.5 else -1) * 0.9
    return img.resize((max(8, round(w * fx)), h), Image.Resampling.BILINEAR)


def crop(img: Image.Image, rng: np.random.Generator, fraction: float, centred: bool) -> Image.Image:
    """Remove `fraction` of the area, keeping the aspect ratio."""
    w, h = img.size
    keep = (1.0 - fraction) ** 0.5
    cw, ch = round(w * keep), round(h * keep)
    if centred:
        x, y = (w - cw) // 2, (h - ch) // 2
    else:
        x = int(rng.integers(0, w - cw + 1))
        y = int(rng.integers(0, h - ch + 1))
        if abs(x - (w - cw) / 2) < (w - cw) / 4:  # make it clearly off-centre
            x = 0 if rng.random() < 0.5 else w - cw
    return img.crop((x, y, x + cw, y + ch))


def pad(img: Image.Image, rng: np.random.Generator, fraction: float, blurred: bool) -> Image.Image:
    """Grow the canvas by `fraction` of each side: a solid colour or a blur of the photo."""
    w, h = img.size
    pw, ph = round(w * fraction / 2), round(h * fraction / 2)
    size = (w + 2 * pw, h + 2 * ph)
    if blurred:
        canvas = img.resize(size, Image.Resampling.BILINEAR).filter(
            ImageFilter.GaussianBlur(radius=max(size) / 30)
        )
    else:
        colour = tuple(int(c) for c in rng.integers(0, 256, 3)) if rng.random() < 0.5 else (0, 0, 0)
        canvas = Image.new("RGB", size, colour)
    canvas.paste(img, (pw, ph))
    return canvas


def rotate(img: Image.Image, degrees: float) -> Image.Image:
    """Rotate keeping the whole photo (black corners), as a re-upload of a tilted photo looks."""
    return img.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(0, 0, 0))


def noise(img: Image.Image, rng: np.random.Generator, sigma: float = 12.0) -> Image.Image:
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, sigma, (img.height, img.width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def watermark(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = img.copy().convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(10, img.width // 14)
    text = f"@user{int(rng.integers(1000, 9999))} repost"
    x = int(rng.integers(0, max(1, img.width // 3)))
    y = int(rng.integers(img.height // 2, max(img.height // 2 + 1, img.height - size * 2)))
    draw.text(
        (x, y),
        text,
        font=_font(size),
        fill=(255, 255, 255, 170),
        stroke_width=1,
        stroke_fill=(0, 0, 0, 170),
    )
    return Image.alpha_composite(out, layer).convert("RGB")


def stickers(img: Image.Image, rng: np.random.Generator, count: int = 3) -> Image.Image:
    """Round emoji-like stickers (yellow faces) covering roughly 10% of the photo."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    r = max(6, round(min(img.size) * 0.11))
    for _ in range(count):
        cx = int(rng.integers(r, max(r + 1, img.width - r)))
        cy = int(rng.integers(r, max(r + 1, img.height - r)))
        draw.ellipse(
            (cx - r, cy - r, cx + r, cy + r), fill=(250, 204, 21), outline=(120, 80, 0), width=2
        )
        e = max(1, r // 5)
        draw.ellipse(
            (cx - r // 2 - e, cy - r // 3 - e, cx - r // 2 + e, cy - r // 3 + e), fill=(40, 30, 0)
        )
        draw.ellipse(
            (cx + r // 2 - e, cy - r // 3 - e, cx + r // 2 + e, cy - r // 3 + e), fill=(40, 30, 0)
        )
        draw.arc(
            (cx - r // 2, cy - r // 4, cx + r // 2, cy + r // 2),
            20,
            160,
            fill=(40, 30, 0),
            width=max(1, e),
        )
    return out


def screenshot(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo at 50-70% of the width of a page with a header bar, text lines and a sidebar."""
    page_w = max(400, round(img.width / float(rng.uniform(0.5, 0.7))))
    photo = img.resize((round(page_w * img.width / page_w), img.height))
    header = round(page_w * 0.08)
    page_h = header + photo.height + round(page_w * 0.35)
    page = Image.new("RGB", (page_w, page_h), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, page_w, header), fill=tuple(int(c) for c in rng.integers(0, 120, 3)))
    left = int(rng.integers(page_w // 40, page_w - photo.width - page_w // 40 + 1))
    top = header + round(page_w * 0.05)
    page.paste(photo, (left, top))
    font = _font(max(9, page_w // 50))
    y = top + photo.height + 10
    words = ["look", "at", "this", "photo", "shared", "from", "the", "weekend", "so", "nice", "lol"]
    while y < page_h - 20:
        line = " ".join(str(rng.choice(words)) for _ in range(int(rng.integers(4, 10))))
        draw.text((left, y), line, font=font, fill=(30, 30, 30))
        y += max(12, page_w // 35)
    return page


def collage(
    img: Image.Image, rng: np.random.Generator, fillers: Sequence[Image.Image]
) -> Image.Image:
    """2x2 grid: the photo in a random cell, three filler photos in the others, white gutters."""
    cell_w, cell_h = img.size
    gutter = max(2, cell_w // 50)
    canvas = Image.new("RGB", (2 * cell_w + 3 * gutter, 2 * cell_h + 3 * gutter), (255, 255, 255))
    slot = int(rng.integers(0, 4))
    picks = list(rng.choice(len(fillers), size=3, replace=len(fillers) < 3)) if fillers else []
    others = [fillers[int(i)] for i in picks]
    for cell in range(4):
        tile = (
            img
            if cell == slot
            else (others.pop() if others else Image.new("RGB", img.size, (128, 128, 128)))
        )
        tile = ImageOps.fit(tile, (cell_w, cell_h)) if tile is not img else tile
        x = gutter + (cell % 2) * (cell_w + gutter)
        y = gutter + (cell // 2) * (cell_h + gutter)
        canvas.paste(tile, (x, y))
    return canvas


def square_crop(img: Image.Image, rng: np.random.Generator, centred: bool) -> Image.Image:
    """The largest square of the photo: its centre, or clearly off-centre along the long side."""
    w, h = img.size
    side = min(w, h)
    slack = max(w, h) - side
    if centred or slack == 0:
        off = slack // 2
    else:
        off = int(rng.integers(0, max(1, slack // 4) + 1))
        if rng.random() < 0.5:
            off = slack - off
    return img.crop((off, 0, off + side, side)) if w >= h else img.crop((0, off, side, off + side))


def _filler_cells(
    rng: np.random.Generator, fillers: Sequence[Image.Image], count: int
) -> list[Image.Image]:
    if not fillers:
        return [Image.new("RGB", (64, 64), (128, 128, 128))] * count
    picks = rng.choice(len(fillers), size=count, replace=len(fillers) < count)
    return [fillers[int(i)] for i in picks]


def grid(
    img: Image.Image,
    rng: np.random.Generator,
    fillers: Sequence[Image.Image],
    n: int,
    gutter: bool,
    canvas_side: int = GRID_SIDE,
) -> Image.Image:
    """An n x n grid of square cells on a `canvas_side` square, as harvesting sites post them:
    the photo square-cropped (centre or off-centre) into a random cell, fillers (each
    square-cropped too) in the others, with or without gutters of one colour."""
    g = max(3, canvas_side // 120) if gutter else 0
    cell = (canvas_side - (n + 1) * g) // n
    side = n * cell + (n + 1) * g
    colour = (255, 255, 255) if rng.random() < 0.7 else (0, 0, 0)
    canvas = Image.new("RGB", (side, side), colour)
    slot = int(rng.integers(0, n * n))
    others = iter(_filler_cells(rng, fillers, n * n - 1))
    for k in range(n * n):
        src = img if k == slot else next(others)
        tile = square_crop(src, rng, centred=bool(rng.random() < 0.5)).resize(
            (cell, cell), Image.Resampling.BILINEAR
        )
        canvas.paste(tile, (g + (k % n) * (cell + g), g + (k // n) * (cell + g)))
    return canvas


def grid_uneven(
    img: Image.Image,
    rng: np.random.Generator,
    fillers: Sequence[Image.Image],
    canvas_side: int = GRID_SIDE,
) -> Image.Image:
    """A 3 x 3 layout with one big 2 x 2 cell in a random corner and five small cells, thin
    gutters; the photo, square-cropped, in the big cell or in a small one."""
    g = max(3, canvas_side // 150)
    cell = (canvas_side - 4 * g) // 3
    side = 3 * cell + 4 * g
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    bx, by = int(rng.integers(0, 2)), int(rng.integers(0, 2))
    big = (bx, by, 2 * cell + g)
    smalls = [
        (cx, cy, cell)
        for cy in range(3)
        for cx in range(3)
        if not (bx <= cx <= bx + 1 and by <= cy <= by + 1)
    ]
    slots = [big, *smalls]
    slot = int(rng.integers(0, len(slots)))
    others = iter(_filler_cells(rng, fillers, len(slots) - 1))
    for k, (cx, cy, size) in enumerate(slots):
        src = img if k == slot else next(others)
        tile = square_crop(src, rng, centred=bool(rng.random() < 0.5)).resize(
            (size, size), Image.Resampling.BILINEAR
        )
        canvas.paste(tile, (g + cx * (cell + g), g + cy * (cell + g)))
    return canvas


def sepia(img: Image.Image) -> Image.Image:
    arr = np.asarray(img.convert("RGB")).astype(np.float32)
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return Image.fromarray(np.clip(arr @ m.T.astype(np.float32), 0, 255).astype(np.uint8))


def vignette(img: Image.Image, strength: float = 0.55) -> Image.Image:
    """Darken towards the corners: the corners keep 1 - `strength` of their brightness."""
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2
    gain = 1.0 - strength * np.clip(r2 / 2.0, 0.0, 1.0) ** 1.5
    arr = np.asarray(img.convert("RGB")).astype(np.float32) * gain[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


_MEME_WORDS = (
    "when",
    "you",
    "finally",
    "get",
    "the",
    "weekend",
    "off",
    "me",
    "after",
    "one",
    "coffee",
    "nobody",
    "literally",
    "every",
    "monday",
    "mood",
    "that",
    "face",
    "mom",
    "says",
    "no",
)


def captions(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Caption bars above and below the photo, as a meme generator makes them: each 12-22% of
    the photo's height, white with black text (or black with white text), one or two lines."""
    w, h = img.size
    top_h = round(h * float(rng.uniform(0.12, 0.22)))
    bottom_h = round(h * float(rng.uniform(0.12, 0.22)))
    dark = bool(rng.random() < 0.3)
    bg, fg = ((0, 0, 0), (255, 255, 255)) if dark else ((255, 255, 255), (0, 0, 0))
    canvas = Image.new("RGB", (w, h + top_h + bottom_h), bg)
    canvas.paste(img, (0, top_h))
    draw = ImageDraw.Draw(canvas)
    for y0, bar in ((0, top_h), (top_h + h, bottom_h)):
        lines = int(rng.integers(1, 3))
        size = max(8, min(bar // (lines + 1), w // 14))
        for i in range(lines):
            text = " ".join(
                str(rng.choice(_MEME_WORDS)) for _ in range(int(rng.integers(3, 6)))
            ).upper()
            fit = size
            while fit > 8 and draw.textlength(text, font=_font(fit)) > w - 4:
                fit -= 1
            tw = draw.textlength(text, font=_font(fit))
            x = max(2, round((w - tw) / 2))
            y = y0 + round((bar - lines * size * 1.15) / 2 + i * size * 1.15)
            draw.text((x, y), text, font=_font(fit), fill=fg)
    return canvas


def mirror_grey_crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("L").convert("RGB")
    return crop(out, rng, 0.15, centred=False)


def crop_rotate(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = crop(img, rng, 0.20, centred=False)
    return rotate(out, 8.0 if rng.random() < 0.5 else -8.0)


def sepia_vignette_captions(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return captions(vignette(sepia(img)), rng)


def stickers_crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return stickers(crop(img, rng, 0.25, centred=True), rng)


def repost_chain(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The usual re-post: crop 10%, resize to 60%, watermark, JPEG 60."""
    out = crop(img, rng, 0.10, centred=False)
    out = scale(out, 0.6)
    out = watermark(out, rng)
    return jpeg(out, 60)


TRANSFORMS: dict[str, Transform] = {
    "jpeg30": lambda im, r, f: jpeg(im, 30),
    "jpeg50": lambda im, r, f: jpeg(im, 50),
    "jpeg75": lambda im, r, f: jpeg(im, 75),
    "resize0.5": lambda im, r, f: scale(im, 0.5),
    "resize0.25": lambda im, r, f: scale(im, 0.25),
    "thumb150": lambda im, r, f: thumbnail(im, 150),
    "stretch": lambda im, r, f: stretch(im, r),
    "crop5": lambda im, r, f: crop(im, r, 0.05, True),
    "crop10": lambda im, r, f: crop(im, r, 0.10, True),
    "crop20": lambda im, r, f: crop(im, r, 0.20, True),
    "crop30": lambda im, r, f: crop(im, r, 0.30, True),
    "crop5-off": lambda im, r, f: crop(im, r, 0.05, False),
    "crop10-off": lambda im, r, f: crop(im, r, 0.10, False),
    "crop20-off": lambda im, r, f: crop(im, r, 0.20, False),
    "crop30-off": lambda im, r, f: crop(im, r, 0.30, False),
    "pad10": lambda im, r, f: pad(im, r, 0.10, False),
    "pad20": lambda im, r, f: pad(im, r, 0.20, False),
    "pad10-blur": lambda im, r, f: pad(im, r, 0.10, True),
    "pad20-blur": lambda im, r, f: pad(im, r, 0.20, True),
    "rot+2": lambda im, r, f: rotate(im, 2),
    "rot-2": lambda im, r, f: rotate(im, -2),
    "rot+5": lambda im, r, f: rotate(im, 5),
    "rot-5": lambda im, r, f: rotate(im, -5),
    "rot+10": lambda im, r, f: rotate(im, 10),
    "rot-10": lambda im, r, f: rotate(im, -10),
    "rot90": lambda im, r, f: im.transpose(Image.Transpose.ROTATE_90),
    "hflip": lambda im, r, f: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "grey": lambda im, r, f: im.convert("L").convert("RGB"),
    "brightness": lambda im, r, f: ImageEnhance.Brightness(im).enhance(float(r.choice([0.7, 1.3]))),
    "contrast": lambda im, r, f: ImageEnhance.Contrast(im).enhance(float(r.choice([0.6, 1.4]))),
    "blur": lambda im, r, f: im.filter(
        ImageFilter.GaussianBlur(radius=max(1.0, max(im.size) / 250))
    ),
    "noise": lambda im, r, f: noise(im, r),
    "watermark": lambda im, r, f: watermark(im, r),
    "stickers": lambda im, r, f: stickers(im, r),
    "screenshot": lambda im, r, f: screenshot(im, r),
    "collage2x2": lambda im, r, f: collage(im, r, f[:6]),  # the first round's six fillers
    "repost-chain": lambda im, r, f: repost_chain(im, r),
    "captions": lambda im, r, f: captions(im, r),
    "grid2x2": lambda im, r, f: grid(im, r, f, 2, gutter=False),
    "grid2x2-gutter": lambda im, r, f: grid(im, r, f, 2, gutter=True),
    "grid3x3": lambda im, r, f: grid(im, r, f, 3, gutter=False),
    "grid3x3-gutter": lambda im, r, f: grid(im, r, f, 3, gutter=True),
    "grid4x4": lambda im, r, f: grid(im, r, f, 4, gutter=False),
    "grid4x4-gutter": lambda im, r, f: grid(im, r, f, 4, gutter=True),
    "grid-uneven": grid_uneven,
    "mirror+grey+crop15": lambda im, r, f: mirror_grey_crop(im, r),
    "crop20off+rot8": lambda im, r, f: crop_rotate(im, r),
    "sepia+vignette+captions": lambda im, r, f: sepia_vignette_captions(im, r),
    "stickers+crop25": lambda im, r, f: stickers_crop(im, r),
}

GRIDS = frozenset(t for t in TRANSFORMS if t.startswith("grid") or t == "collage2x2")
CHAINS = frozenset(
    {
        "repost-chain",
        "mirror+grey+crop15",
        "crop20off+rot8",
        "sepia+vignette+captions",
        "stickers+crop25",
    }
)


def protected_target(name: str) -> float:
    """Issue 19's recall target for protected photos at the default threshold: 95% on every
    single transform and chain, 90% on grids of up to 3 x 3 (the uneven layout's small cells
    are a third of the side, as in 3 x 3), 80% on 4 x 4."""
    if name.startswith("grid4x4"):
        return 0.80
    return 0.90 if name in GRIDS else 0.95


def known_abuse_target(name: str) -> float | None:
    """Issue 19's recall target for known-abuse banks (query side only), where it sets one:
    95% on mirror and 90-degree rotation; 90% on padding, borders, caption bars and
    screenshots; 50% on 5% crops. Every transform also has "never worse than reference PDQ"."""
    if name in ("hflip", "rot90"):
        return 0.95
    if name.startswith("pad") or name in ("captions", "screenshot"):
        return 0.90
    if name == "crop5":
        return 0.50
    return None


# Transforms whose protected-photo target is below 95% (issue 19: the grids).
RELAXED = frozenset(t for t in TRANSFORMS if protected_target(t) < 0.95)
QUICK = (
    "jpeg50",
    "resize0.25",
    "crop10-off",
    "crop20",
    "pad20",
    "pad20-blur",
    "rot+5",
    "rot-10",
    "hflip",
    "rot90",
    "stickers",
    "screenshot",
    "collage2x2",
    "repost-chain",
    "captions",
    "grid3x3",
    "grid4x4-gutter",
    "mirror+grey+crop15",
    "crop20off+rot8",
)


def apply(
    name: str, img: Image.Image, photo_id: str, fillers: Sequence[Image.Image] = (), seed: int = 5
) -> Image.Image:
    return TRANSFORMS[name](img, rng_for(name, photo_id, seed), fillers)
