// Owns MD5 in the browser (RFC 1321), for the exact-copy signal SubtleCrypto does not offer.
/** md5Hex(bytes: Uint8Array) -> 32 lowercase hex digits. */

const S = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
  14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
  21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

function block(state, words) {
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  for (let i = 0; i < 64; i++) {
    let f;
    let g;
    if (i < 16) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (i < 32) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (i < 48) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    const t = d;
    d = c;
    c = b;
    const x = (a + f + K[i] + words[g]) | 0;
    b = (b + ((x << S[i]) | (x >>> (32 - S[i])))) | 0;
    a = t;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
}

export function md5Hex(bytes) {
  const state = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
  const words = new Int32Array(16);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const full = bytes.length - (bytes.length % 64);
  for (let off = 0; off < full; off += 64) {
    for (let i = 0; i < 16; i++) words[i] = view.getInt32(off + 4 * i, true);
    block(state, words);
  }
  const restLength = bytes.length - full;
  const tail = new Uint8Array(restLength < 56 ? 64 : 128);
  tail.set(bytes.subarray(full));
  tail[restLength] = 0x80;
  const tailView = new DataView(tail.buffer);
  const bits = bytes.length * 8;
  tailView.setUint32(tail.length - 8, bits >>> 0, true);
  tailView.setUint32(tail.length - 4, Math.floor(bits / 2 ** 32), true);
  for (let off = 0; off < tail.length; off += 64) {
    for (let i = 0; i < 16; i++) words[i] = tailView.getInt32(off + 4 * i, true);
    block(state, words);
  }
  const out = new DataView(state.buffer);
  let hex = "";
  for (let i = 0; i < 16; i++) hex += out.getUint8(i).toString(16).padStart(2, "0");
  return hex;
}
