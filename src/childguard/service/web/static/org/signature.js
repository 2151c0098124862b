// Owns the protected-photo signature in the browser: the 512-px reduction, the PDQ of each
// registered view, ORB keypoints and descriptors (OpenCV.js), the exact hashes of the bytes.
/**
 * The same signature `childguard.robust.signature.compute_signature` computes, in the same
 * JSON form (`ProtectedSignature.from_json` reads it), plus the photo's own signals as
 * `protect register` stores them (MD5, SHA-1, SHA-256 of the file bytes; PDQ of the whole
 * decoded photo). Nothing here sends anything anywhere.
 */

import { md5Hex } from "./md5.js";
import { pdqFromPixels } from "./pdq.js";

// Registered views: label -> [x0, y0, x1, y1] as fractions (`robust.signature.VIEWS`).
export const VIEWS = [
  ["full", [0.0, 0.0, 1.0, 1.0]],
  ["c90", [0.05, 0.05, 0.95, 0.95]],
  ["c80", [0.1, 0.1, 0.9, 0.9]],
  ["c70", [0.15, 0.15, 0.85, 0.85]],
  ["tl85", [0.0, 0.0, 0.85, 0.85]],
  ["tr85", [0.15, 0.0, 1.0, 0.85]],
  ["bl85", [0.0, 0.15, 0.85, 1.0]],
  ["br85", [0.15, 0.15, 1.0, 1.0]],
];
// Square views for the aligned check: label -> place along the long side
// (`robust.signature.SQUARE_VIEWS`), squares of SQUARE_SIDE of the short side.
export const SQUARE_VIEWS = [
  ["sqa", 0.0],
  ["sqc", 0.5],
  ["sqb", 1.0],
];
const SQUARE_SIDE = 0.8;
export const WORK_SIDE = 512;
const MIN_SIDE = 384;
const ORB_FEATURES = 300;
const FAST = 10;
const FAST_LOW = 2;
const FEW_KEYPOINTS = 300;
export const MAX_PIXELS = 120000000;
// As `childguard.media.DEFAULT_LIMITS.max_bytes`: the service refuses larger sizes.
export const MAX_BYTES = 256 * 1024 * 1024;

/** Python's round(): halves go to the even neighbour. */
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function workFactor(h, w, maxSide) {
  let f = Math.min(1.0, maxSide / Math.max(h, w));
  if (Math.max(h, w) * f < MIN_SIDE) f = MIN_SIDE / Math.max(h, w);
  return f;
}

function viewRect(box, w, h) {
  const [x0, y0, x1, y1] = box;
  const left = pyRound(x0 * w);
  const top = pyRound(y0 * h);
  return [left, top, pyRound(x1 * w) - left, pyRound(y1 * h) - top];
}

/** `robust.signature.square_box`: the same floats, computed in the same order. */
function squareBox(place, w, h) {
  const short = Math.min(w, h);
  const long = Math.max(w, h);
  const side = SQUARE_SIDE * short;
  const first = short - side;
  const last = long - short;
  const start = first + place * (last - first);
  const along = [start / long, (start + side) / long];
  const across = [(short - side) / 2 / short, (short + side) / 2 / short];
  return w >= h
    ? [along[0], across[0], along[1], across[1]]
    : [across[0], along[0], across[1], along[1]];
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** MD5, SHA-1 and SHA-256 of the file's bytes. */
export async function exactHashes(bytes) {
  const [sha1, sha256] = await Promise.all([
    crypto.subtle.digest("SHA-1", bytes),
    crypto.subtle.digest("SHA-256", bytes),
  ]);
  return { md5: md5Hex(bytes), sha1: hex(sha1), sha256: hex(sha256) };
}

function orbFeatures(cv, grey) {
  const detect = (threshold) => {
    const orb = new cv.ORB(ORB_FEATURES);
    orb.setFastThreshold(threshold);
    const kps = new cv.KeyPointVector();
    const desc = new cv.Mat();
    const mask = new cv.Mat();
    orb.detectAndCompute(grey, mask, kps, desc);
    mask.delete();
    orb.delete();
    return [kps, desc];
  };
  let [kps, desc] = detect(FAST);
  if (kps.size() < FEW_KEYPOINTS) {
    kps.delete();
    desc.delete();
    [kps, desc] = detect(FAST_LOW);
  }
  const points = [];
  const n = desc.rows === kps.size() ? kps.size() : 0;
  for (let i = 0; i < n; i++) {
    const k = kps.get(i);
    points.push({ i, x: k.pt.x, y: k.pt.y, response: k.response });
  }
  points.sort((a, b) => b.response - a.response || a.i - b.i);
  const raw = new Uint8Array(36 * points.length);
  const view = new DataView(raw.buffer);
  points.forEach((p, j) => {
    view.setUint16(4 * j, pyRound(Math.fround(p.x)), false);
    view.setUint16(4 * j + 2, pyRound(Math.fround(p.y)), false);
    raw.set(desc.data.subarray(32 * p.i, 32 * p.i + 32), 4 * points.length + 32 * j);
  });
  kps.delete();
  desc.delete();
  return { blob: base64(raw), count: points.length };
}

/**
 * The protected signature of RGBA pixels (`rgba`: Uint8ClampedArray, width * height * 4):
 * {pdq: [[label, hex], ...], squares: [[label, hex], ...], features: base64, size: [w, h]}, with
 * the keypoint count.
 */
export function protectedSignature(cv, rgba, width, height) {
  if (Math.min(width, height) < 16) {
    throw new Error("photo too small for a protected signature (under 16 px)");
  }
  const src = new cv.Mat(height, width, cv.CV_8UC4);
  src.data.set(rgba);
  let rgb = new cv.Mat();
  cv.cvtColor(src, rgb, cv.COLOR_RGBA2RGB);
  src.delete();
  let w = width;
  let h = height;
  if (Math.max(h, w) > WORK_SIDE) {
    const f = WORK_SIDE / Math.max(h, w);
    h = Math.max(1, pyRound(h * f));
    w = Math.max(1, pyRound(w * f));
    const small = new cv.Mat();
    cv.resize(rgb, small, new cv.Size(w, h), 0, 0, cv.INTER_AREA);
    rgb.delete();
    rgb = small;
  }
  const hashed = (label, box) => {
    const [x, y, vw, vh] = viewRect(box, w, h);
    const view = rgb.roi(new cv.Rect(x, y, vw, vh));
    const dense = new cv.Mat();
    view.copyTo(dense); // (clone() of a region keeps the parent's row stride)
    const pair = [label, pdqFromPixels(dense.data, vw, vh, 3).hash];
    dense.delete();
    view.delete();
    return pair;
  };
  const hashes = VIEWS.map(([label, box]) => hashed(label, box));
  const squares = SQUARE_VIEWS.map(([label, place]) => hashed(label, squareBox(place, w, h)));
  const f = workFactor(h, w, WORK_SIDE);
  let grey = new cv.Mat();
  cv.cvtColor(rgb, grey, cv.COLOR_RGB2GRAY);
  rgb.delete();
  if (f !== 1.0) {
    const scaled = new cv.Mat();
    const size = new cv.Size(Math.max(1, pyRound(w * f)), Math.max(1, pyRound(h * f)));
    cv.resize(grey, scaled, size, 0, 0, f < 1.0 ? cv.INTER_AREA : cv.INTER_LINEAR);
    grey.delete();
    grey = scaled;
  }
  const { blob, count } = orbFeatures(cv, grey);
  grey.delete();
  return {
    signature: {
      pdq: hashes,
      squares,
      features: blob,
      size: [Math.max(1, pyRound(w * f)), Math.max(1, pyRound(h * f))],
    },
    keypoints: count,
  };
}

/**
 * Everything the service needs for one photo file (a File or Blob), computed here:
 * {file_name, width, height, byte_size, md5, sha1, sha256, pdq, pdq_quality, signature}.
 * Throws an Error whose message says why a file could not be decoded.
 */
export async function photoSignature(cv, file, name) {
  if (file.size > MAX_BYTES) throw new Error(`the file is over ${MAX_BYTES} bytes`);
  if (name.length > 255 || !/^[^\x00-\x1f\x7f/\\]+$/.test(name)) {
    throw new Error("the file name is too long or has characters the service refuses");
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (!bytes.length) throw new Error("the file is empty");
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: file.type || "" }), {
      imageOrientation: "from-image",
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
    });
  } catch (err) {
    throw new Error("the browser could not decode this file as a photo");
  }
  const width = bitmap.width;
  const height = bitmap.height;
  if (width * height > MAX_PIXELS) {
    bitmap.close();
    throw new Error(`${width}x${height} pixels is over the limit of ${MAX_PIXELS}`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  const whole = pdqFromPixels(rgba, width, height, 4);
  const { signature, keypoints } = protectedSignature(cv, rgba, width, height);
  const exact = await exactHashes(bytes);
  return {
    photo: {
      file_name: name,
      width,
      height,
      byte_size: bytes.length,
      ...exact,
      pdq: whole.hash,
      pdq_quality: whole.quality,
      signature,
    },
    keypoints,
  };
}
