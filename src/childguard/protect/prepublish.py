"""The check before publishing a photo: finds metadata that identifies a place or a person
(GPS position, camera and lens serial numbers, owner or artist names, capture dates, XMP
and IPTC blocks, comments) and can write a copy with all of it stripped.

The stripped copy keeps the pixels as displayed (EXIF orientation is applied) and the colour
profile, and drops every other metadata block. JPEGs that need no rotation are re-saved with
their own quantisation tables (`quality="keep"`), so the pixels barely change.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, ImageOps

from childguard.errors import MediaError
from childguard.media import DEFAULT_LIMITS, Limits, read_bytes, sniff_format

# (tag id, label, category, why it matters)
_IFD0_TAGS = {
    0x013B: ("Artist", "owner", "names the photographer"),
    0x8298: ("Copyright", "owner", "names the owner"),
    0x010E: ("ImageDescription", "text", "free text may name people or places"),
    0x0132: ("DateTime", "date", "when the file was changed"),
    0x010F: ("Make", "camera", "camera make (with the model, narrows down the device)"),
    0x0110: ("Model", "camera", "camera model"),
    0x9C9D: ("XPAuthor", "owner", "Windows author field"),
    0x9C9C: ("XPComment", "text", "Windows comment"),
}
_EXIF_TAGS = {
    0xA431: ("BodySerialNumber", "serial", "camera serial number links photos to one device"),
    0xA435: ("LensSerialNumber", "serial", "lens serial number links photos to one device"),
    0xA430: ("CameraOwnerName", "owner", "names the camera's owner"),
    0x9003: ("DateTimeOriginal", "date", "when the photo was taken"),
    0x9004: ("DateTimeDigitized", "date", "when the photo was digitised"),
    0x9286: ("UserComment", "text", "free text may name people or places"),
    0xA420: ("ImageUniqueID", "serial", "unique id can link copies of the photo"),
    0x927C: ("MakerNote", "serial", "maker notes often hold the serial number"),
}
_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
SEVERITY = {"location": "high", "serial": "high", "owner": "high", "date": "medium"}


@dataclass(frozen=True)
class Finding:
    field: str
    category: str  # location, serial, owner, date, camera, text, metadata
    severity: str  # high, medium, low
    value: str
    why: str


@dataclass(frozen=True)
class PrepublishReport:
    path: str
    format: str
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        return not self.findings

    @property
    def has_location(self) -> bool:
        return any(f.category == "location" for f in self.findings)


def _short(value: object) -> str:
    if isinstance(value, bytes):
        text = value.decode("utf-16-le" if b"\x00" in value else "latin-1", "replace").strip("\x00")
        return text[:80] if text.isprintable() else f"<{len(value)} bytes>"
    return str(value)[:80]


def _open(data: bytes, limits: Limits) -> Image.Image:
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise MediaError("not-an-image", "content is not a recognised image format")
    try:
        img = Image.open(io.BytesIO(data))
    except Exception as exc:
        raise MediaError("corrupt", f"cannot open image: {exc}") from exc
    if img.width * img.height > limits.max_pixels:
        raise MediaError("too-many-pixels", f"{img.width}x{img.height} is over the pixel limit")
    return img


def _gps_text(gps: dict[int, object]) -> str:
    def deg(v: object) -> float:
        d, m, s = (float(x) for x in v)  # type: ignore[attr-defined]
        return d + m / 60 + s / 3600

    try:
        lat = deg(gps[2]) * (-1 if gps.get(1) == "S" else 1)
        lon = deg(gps[4]) * (-1 if gps.get(3) == "W" else 1)
        return f"{lat:.5f}, {lon:.5f}"
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return ", ".join(f"{ExifTags.GPSTAGS.get(k, k)}={_short(v)}" for k, v in gps.items())


def check_before_publishing(path: Path, limits: Limits = DEFAULT_LIMITS) -> PrepublishReport:
    """What identifying metadata `path` carries. Raises MediaError for unsafe or bad files."""
    data = read_bytes(path, limits)
    img = _open(data, limits)
    findings: list[Finding] = []
    exif = img.getexif()
    gps = exif.get_ifd(_GPS_IFD)
    if gps:
        findings.append(
            Finding("GPS", "location", "high", _gps_text(gps), "shows where the photo was taken")
        )
    for tags, source in ((_IFD0_TAGS, dict(exif)), (_EXIF_TAGS, exif.get_ifd(_EXIF_IFD))):
        for tag, value in source.items():
            if tag in tags and value not in (None, "", b""):
                label, category, why = tags[tag]
                sev = SEVERITY.get(category, "low")
                findings.append(Finding(label, category, sev, _short(value), why))
    info = img.info
    if "xmp" in info or "XML:com.adobe.xmp" in info:
        findings.append(
            Finding("XMP", "metadata", "medium", "present", "may hold names, places, keywords")
        )
    if img.format == "JPEG" and any(m[0] == 0xED for m in getattr(img, "applist", [])):
        findings.append(
            Finding("IPTC", "metadata", "medium", "present", "may hold captions, names, places")
        )
    for key in ("comment", "Comment", "Description", "Author", "Location"):
        if info.get(key):
            findings.append(Finding(key, "text", "medium", _short(info[key]), "embedded text"))
    return PrepublishReport(str(path), img.format or "?", tuple(findings))


def write_stripped_copy(
    source: Path, dest: Path, limits: Limits = DEFAULT_LIMITS, *, overwrite: bool = False
) -> PrepublishReport:
    """Write `source` without its metadata to `dest`; returns the check of the new file.

    Refuses to overwrite an existing file unless `overwrite`, and never writes over `source`.
    """
    if dest.resolve() == source.resolve():
        raise ValueError("write the stripped copy to a new file, not over the original")
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} exists; choose another name or pass overwrite")
    data = read_bytes(source, limits)
    img = _open(data, limits)
    fmt = img.format or "PNG"
    icc = img.info.get("icc_profile")
    orientation = img.getexif().get(0x0112, 1)
    img.load()
    out = io.BytesIO()
    kwargs: dict[str, object] = {}
    if icc:
        kwargs["icc_profile"] = icc
    if fmt == "JPEG":
        if orientation in (None, 1):
            kwargs["quality"] = "keep"
            kwargs["subsampling"] = "keep"
            clean = img
        else:
            clean = ImageOps.exif_transpose(img) or img
            kwargs["quality"] = 95
        clean.save(out, "JPEG", **kwargs)
    else:
        clean = ImageOps.exif_transpose(img) or img
        save_fmt = fmt if fmt in ("PNG", "WEBP", "TIFF", "BMP", "GIF") else "PNG"
        if save_fmt == "WEBP":
            kwargs["lossless"] = True
        clean = clean.copy()
        clean.info = {}  # nothing from the original's info (EXIF, text chunks) is carried over
        clean.save(out, save_fmt, **kwargs)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(out.getvalue())
    tmp.replace(dest)
    return check_before_publishing(dest, limits)
