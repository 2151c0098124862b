// Owns PDQ in the browser: luma, the Jarosz tent filter, 64x64 decimation, the 16x16 DCT, the
// median threshold and the quality metric, as Meta's reference computes them.
/**
 * PDQ (Meta's 256-bit perceptual hash) from RGB(A) pixels, a port of the reference C++
 * (`pdq/cpp/hashing/pdqhashing.cpp`) that childguard's Python side runs through `pdqhash`.
 * Buffers are float32, as in the reference, so the two agree to a bit or two.
 *
 * pdqFromPixels(data, width, height, channels) -> {hash: 64 hex digits, quality: 0-100}
 */

const LUMA_R = 0.299;
const LUMA_G = 0.587;
const LUMA_B = 0.114;
const DCT = dctMatrix();

function dctMatrix() {
  const out = new Float32Array(16 * 64);
  const scale = Math.sqrt(2.0 / 64.0);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      out[i * 64 + j] = scale * Math.cos((Math.PI / 2 / 64.0) * (i + 1) * (2 * j + 1));
    }
  }
  return out;
}

/** Float32 luma of interleaved 8-bit pixels (`channels` 3 for RGB, 4 for RGBA). */
export function lumaOf(data, width, height, channels) {
  const n = width * height;
  const luma = new Float32Array(n);
  for (let i = 0, p = 0; i < n; i++, p += channels) {
    luma[i] = LUMA_R * data[p] + LUMA_G * data[p + 1] + LUMA_B * data[p + 2];
  }
  return luma;
}

function windowSize(oldDimension, newDimension) {
  return Math.floor((oldDimension + 2 * newDimension - 1) / (2 * newDimension));
}

function box1D(input, output, offset, length, stride, fullWindow) {
  const half = Math.floor((fullWindow + 2) / 2);
  const phase1 = half - 1;
  const phase2 = fullWindow - half + 1;
  const phase3 = length - fullWindow;
  const phase4 = half - 1;
  let li = offset;
  let ri = offset;
  let oi = offset;
  let sum = 0;
  let size = 0;
  for (let i = 0; i < phase1; i++) {
    sum = Math.fround(sum + input[ri]);
    size++;
    ri += stride;
  }
  for (let i = 0; i < phase2; i++) {
    sum = Math.fround(sum + input[ri]);
    size++;
    output[oi] = sum / size;
    ri += stride;
    oi += stride;
  }
  for (let i = 0; i < phase3; i++) {
    sum = Math.fround(sum + input[ri]);
    sum = Math.fround(sum - input[li]);
    output[oi] = sum / size;
    li += stride;
    ri += stride;
    oi += stride;
  }
  for (let i = 0; i < phase4; i++) {
    sum = Math.fround(sum - input[li]);
    size--;
    output[oi] = sum / size;
    li += stride;
    oi += stride;
  }
}

function jarosz(buffer, temp, rows, cols, windowAlongRows, windowAlongCols, passes) {
  for (let k = 0; k < passes; k++) {
    for (let i = 0; i < rows; i++) box1D(buffer, temp, i * cols, cols, 1, windowAlongRows);
    for (let j = 0; j < cols; j++) box1D(temp, buffer, j, rows, cols, windowAlongCols);
  }
}

function decimate(input, rows, cols) {
  const out = new Float32Array(64 * 64);
  for (let i = 0; i < 64; i++) {
    const ini = Math.floor(((i + 0.5) * rows) / 64);
    for (let j = 0; j < 64; j++) {
      const inj = Math.floor(((j + 0.5) * cols) / 64);
      out[i * 64 + j] = input[ini * cols + inj];
    }
  }
  return out;
}

function quality(buffer) {
  let gradientSum = 0;
  for (let i = 0; i < 63; i++) {
    for (let j = 0; j < 64; j++) {
      const d = Math.fround(((buffer[i * 64 + j] - buffer[(i + 1) * 64 + j]) * 100) / 255);
      gradientSum += Math.trunc(Math.abs(d));
    }
  }
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 63; j++) {
      const d = Math.fround(((buffer[i * 64 + j] - buffer[i * 64 + j + 1]) * 100) / 255);
      gradientSum += Math.trunc(Math.abs(d));
    }
  }
  return Math.min(100, Math.floor(gradientSum / 90));
}

function dct64To16(a) {
  const t = new Float32Array(16 * 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      let sum = 0;
      for (let k = 0; k < 64; k++) sum = Math.fround(sum + DCT[i * 64 + k] * a[k * 64 + j]);
      t[i * 64 + j] = sum;
    }
  }
  const b = new Float32Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      let sum = 0;
      for (let k = 0; k < 64; k++) sum = Math.fround(sum + t[i * 64 + k] * DCT[j * 64 + k]);
      b[i * 16 + j] = sum;
    }
  }
  return b;
}

function toHex(dct) {
  const sorted = Float32Array.from(dct).sort();
  const median = sorted[127];
  const words = new Uint16Array(16);
  for (let k = 0; k < 256; k++) {
    if (dct[k] > median) words[k >> 4] |= 1 << (k & 15);
  }
  let hex = "";
  for (let w = 15; w >= 0; w--) hex += words[w].toString(16).padStart(4, "0");
  return hex;
}

/** PDQ of a float32 luma image: {hash, quality}. The buffer is filtered in place. */
export function pdqFromLuma(luma, width, height) {
  if (width < 1 || height < 1) throw new Error("empty image");
  const temp = new Float32Array(width * height);
  jarosz(luma, temp, height, width, windowSize(width, 64), windowSize(height, 64), 2);
  const small = decimate(luma, height, width);
  return { hash: toHex(dct64To16(small)), quality: quality(small) };
}

/** PDQ of interleaved 8-bit RGB (channels 3) or RGBA (channels 4) pixels. */
export function pdqFromPixels(data, width, height, channels = 4) {
  return pdqFromLuma(lumaOf(data, width, height, channels), width, height);
}

/** Hamming distance of two 64-digit hex hashes. */
export function hamming(a, b) {
  let d = 0;
  for (let i = 0; i < 64; i += 8) {
    let x = (parseInt(a.slice(i, i + 8), 16) ^ parseInt(b.slice(i, i + 8), 16)) >>> 0;
    while (x) {
      x &= x - 1;
      d++;
    }
  }
  return d;
}
