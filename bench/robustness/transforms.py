"""Seeded, reproducible image transforms that mimic how photos get re-posted.

Each transform is a pure function of (image, rng, fillers): the rng is derived from
(transform name, photo id) by `rng_for`, so a rerun produces identical pixels.
`fillers` are other photos, used only by the collage.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Transform = Callable[[Image.Image, np.random.Generator, Sequence[Image.Image]], Image.Image]


def rng_for(transform: str, photo_id: str, seed: int = 5) -> np.random.Generator:
    return np.random.default_rng(
        [seed, zlib.crc32(transform.encode()), zlib.crc32(photo_id.encode())]
    )


@lru_cache(maxsize=16)
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
    "collage2x2": collage,
    "repost-chain": lambda im, r, f: repost_chain(im, r),
}

# Transforms whose protected-photo target is 80% instead of 95%.
RELAXED = frozenset({"collage2x2", "rot+10", "rot-10"})
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
)


def apply(
    name: str, img: Image.Image, photo_id: str, fillers: Sequence[Image.Image] = (), seed: int = 5
) -> Image.Image:
    return TRANSFORMS[name](img, rng_for(name, photo_id, seed), fillers)
