// Owns the check before publishing in the browser: the metadata rules of
// `childguard.protect.prepublish` over JPEG, PNG and WebP files, and the cleaned copy.
/**
 * findings(bytes) -> [{field, category, severity, value}] for GPS positions, camera and lens
 * serial numbers, owner and artist names, dates, camera make and model, free text, XMP and
 * IPTC blocks (the same tags and categories as `prepublish.py`). cleanedCopy(file) re-encodes
 * the decoded pixels (EXIF orientation applied) through a canvas, so no metadata is left.
 * Nothing here makes a request.
 */

const IFD0 = {
  0x013b: ["Artist", "owner"],
  0x8298: ["Copyright", "owner"],
  0x010e: ["ImageDescription", "text"],
  0x0132: ["DateTime", "date"],
  0x010f: ["Make", "camera"],
  0x0110: ["Model", "camera"],
  0x9c9d: ["XPAuthor", "owner"],
  0x9c9c: ["XPComment", "text"],
};
const EXIF = {
  0xa431: ["BodySerialNumber", "serial"],
  0xa435: ["LensSerialNumber", "serial"],
  0xa430: ["CameraOwnerName", "owner"],
  0x9003: ["DateTimeOriginal", "date"],
  0x9004: ["DateTimeDigitized", "date"],
  0x9286: ["UserComment", "text"],
  0xa420: ["ImageUniqueID", "serial"],
  0x927c: ["MakerNote", "serial"],
};
const GPS_IFD = 0x8825;
const EXIF_IFD = 0x8769;
const SEVERITY = { location: "high", serial: "high", owner: "high", date: "medium" };
const TEXT_KEYS = ["comment", "Comment", "Description", "Author", "Location"];
const SIZES = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8 };
const latin1 = new TextDecoder("latin1");

function finding(field, category, value) {
  return { field, category, severity: SEVERITY[category] || "low", value };
}

/** The entries of one TIFF IFD: tag -> {type, count, offset of the value}. */
function readIfd(view, base, offset, little) {
  const out = new Map();
  if (offset + 2 > view.byteLength - base) return out;
  const n = view.getUint16(base + offset, little);
  for (let i = 0; i < n; i++) {
    const at = base + offset + 2 + 12 * i;
    if (at + 12 > view.byteLength) break;
    const tag = view.getUint16(at, little);
    const type = view.getUint16(at + 2, little);
    const count = view.getUint32(at + 4, little);
    const size = (SIZES[type] || 1) * count;
    const valueAt = size <= 4 ? at + 8 : base + view.getUint32(at + 8, little);
    if (valueAt + size <= view.byteLength) out.set(tag, { type, count, at: valueAt });
  }
  return out;
}

function valueOf(view, entry, little) {
  const { type, count, at } = entry;
  if (type === 2 || type === 7 || type === 1) {
    const bytes = new Uint8Array(view.buffer, view.byteOffset + at, count);
    if (type === 1 && count > 2 && bytes[1] === 0) {
      return new TextDecoder("utf-16le").decode(bytes).replace(/\0+$/, "");
    }
    let text = latin1.decode(bytes).replace(/\0+$/, "");
    if (type === 7 && /^(ASCII|UNICODE|JIS)\0/.test(text)) text = text.slice(8);
    return /^[\x20-\x7e\u00a0-\u00ff]*$/.test(text) ? text.slice(0, 80) : `<${count} bytes>`;
  }
  if (type === 3) return count === 1 ? view.getUint16(at, little) : `<${count} values>`;
  if (type === 4) return count === 1 ? view.getUint32(at, little) : `<${count} values>`;
  if (type === 5) {
    const parts = [];
    for (let i = 0; i < count; i++) {
      const den = view.getUint32(at + 8 * i + 4, little);
      parts.push(den ? view.getUint32(at + 8 * i, little) / den : 0);
    }
    return parts;
  }
  return `<${count} values>`;
}

function gpsText(view, gps, little) {
  const deg = (tag) => {
    const v = gps.get(tag) && valueOf(view, gps.get(tag), little);
    return Array.isArray(v) && v.length === 3 ? v[0] + v[1] / 60 + v[2] / 3600 : null;
  };
  const ref = (tag) => (gps.get(tag) ? valueOf(view, gps.get(tag), little) : "");
  const lat = deg(2);
  const lon = deg(4);
  if (lat === null || lon === null) return "present";
  const sLat = ref(1) === "S" ? -lat : lat;
  const sLon = ref(3) === "W" ? -lon : lon;
  return `${sLat.toFixed(5)}, ${sLon.toFixed(5)}`;
}

/** Findings of an EXIF (TIFF) block. */
export function exifFindings(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) return [];
  const little = bytes[0] === 0x49;
  if (!little && bytes[0] !== 0x4d) return [];
  const out = [];
  const ifd0 = readIfd(view, 0, view.getUint32(4, little), little);
  const pointer = (tag) => (ifd0.has(tag) ? view.getUint32(ifd0.get(tag).at, little) : null);
  const gpsAt = pointer(GPS_IFD);
  if (gpsAt !== null) {
    const gps = readIfd(view, 0, gpsAt, little);
    if (gps.size) out.push(finding("GPS", "location", gpsText(view, gps, little)));
  }
  const exifAt = pointer(EXIF_IFD);
  const exif = exifAt !== null ? readIfd(view, 0, exifAt, little) : new Map();
  for (const [tags, entries] of [
    [IFD0, ifd0],
    [EXIF, exif],
  ]) {
    for (const [tag, entry] of entries) {
      if (!(tag in tags)) continue;
      const value = valueOf(view, entry, little);
      if (value === "" || value === null) continue;
      const [label, category] = tags[tag];
      out.push(finding(label, category, String(value)));
    }
  }
  return out;
}

function jpegFindings(bytes) {
  const out = [];
  let i = 2;
  while (i + 4 <= bytes.length && bytes[i] === 0xff) {
    const marker = bytes[i + 1];
    if (marker === 0xda || marker === 0xd9) break;
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    const body = bytes.subarray(i + 4, i + 2 + length);
    const head = latin1.decode(body.subarray(0, 29));
    if (marker === 0xe1 && head.startsWith("Exif\0")) out.push(...exifFindings(body.subarray(6)));
    else if (marker === 0xe1 && head.startsWith("http://ns.adobe.com/xap/1.0/")) {
      out.push(finding("XMP", "metadata", "present"));
    } else if (marker === 0xed) out.push(finding("IPTC", "metadata", "present"));
    else if (marker === 0xfe) out.push(finding("comment", "text", latin1.decode(body).slice(0, 80)));
    i += 2 + length;
  }
  return out;
}

function pngFindings(bytes) {
  const out = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 8;
  while (i + 8 <= bytes.length) {
    const length = view.getUint32(i);
    const type = latin1.decode(bytes.subarray(i + 4, i + 8));
    const body = bytes.subarray(i + 8, i + 8 + length);
    if (type === "eXIf") out.push(...exifFindings(body));
    else if (type === "tEXt" || type === "iTXt" || type === "zTXt") {
      const key = latin1.decode(body.subarray(0, Math.max(0, body.indexOf(0))));
      if (key === "XML:com.adobe.xmp") out.push(finding("XMP", "metadata", "present"));
      else if (TEXT_KEYS.includes(key)) {
        const text = latin1.decode(body.subarray(key.length + 1)).replace(/^\0+/, "");
        out.push(finding(key, "text", type === "tEXt" ? text.slice(0, 80) : "present"));
      }
    }
    if (type === "IEND") break;
    i += 12 + length;
  }
  return out;
}

function webpFindings(bytes) {
  const out = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 12;
  while (i + 8 <= bytes.length) {
    const type = latin1.decode(bytes.subarray(i, i + 4));
    const length = view.getUint32(i + 4, true);
    const body = bytes.subarray(i + 8, i + 8 + length);
    if (type === "EXIF") {
      const start = latin1.decode(body.subarray(0, 6)) === "Exif\0\0" ? 6 : 0;
      out.push(...exifFindings(body.subarray(start)));
    } else if (type === "XMP ") out.push(finding("XMP", "metadata", "present"));
    i += 8 + length + (length & 1);
  }
  return out;
}

/** The format of `bytes` ("jpeg", "png", "webp") or null. */
export function formatOf(bytes) {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return "jpeg";
  if (bytes[0] === 0x89 && latin1.decode(bytes.subarray(1, 4)) === "PNG") return "png";
  if (latin1.decode(bytes.subarray(0, 4)) === "RIFF" && latin1.decode(bytes.subarray(8, 12)) === "WEBP") {
    return "webp";
  }
  return null;
}

/** Identifying metadata in a photo's bytes. Throws for a format it cannot check. */
export function findings(bytes) {
  const format = formatOf(bytes);
  if (format === "jpeg") return jpegFindings(bytes);
  if (format === "png") return pngFindings(bytes);
  if (format === "webp") return webpFindings(bytes);
  throw new Error("not a JPEG, PNG or WebP file");
}

/** A copy of the photo with no metadata: its pixels as displayed, re-encoded by a canvas. */
export async function cleanedCopy(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const format = formatOf(bytes);
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  const type = format === "png" ? "image/png" : format === "webp" ? "image/webp" : "image/jpeg";
  return canvas.convertToBlob({ type, quality: 0.92 });
}
