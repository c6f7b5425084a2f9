// Headwater function runtime, part 4: document ids and int64 JSON, so that
// `db.normalizeId` and `meta.getSnapshotTs` can be answered synchronously
// inside V8 (mini-racer cannot call into Python synchronously).
//
// Id text (spec §6.2): base32 (ALPHABET, most significant bit first, no
// padding) of varint(table number) | 16-byte internal id | Fletcher-16
// checksum [c0, c1] (mod 256). Anything that does not re-encode to itself is
// not an id.
(function (hw) {
  "use strict";
  const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
  const INTERNAL_ID_BYTES = 16;
  const VALID_LENGTHS = { 31: true, 32: true, 34: true, 36: true, 37: true };
  const TABLE_NUMBER_MAX = 4294967295;
  const DIGIT = new Map(Array.from(ALPHABET, (c, i) => [c, i]));

  function base32Decode(text) {
    const out = new Uint8Array(Math.floor((text.length * 5) / 8));
    let acc = 0, bits = 0, n = 0;
    for (let i = 0; i < text.length; i++) {
      const d = DIGIT.get(text[i]);
      if (d === undefined) return null;
      acc = ((acc << 5) | d) & 0xffff;
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        if (n < out.length) out[n++] = (acc >> bits) & 255;
      }
    }
    // Bits past the last whole byte must be zero (canonical form).
    if ((acc & ((1 << bits) - 1)) !== 0) return null;
    return out;
  }

  function fletcher16(bytes, end) {
    let c0 = 0, c1 = 0;
    for (let i = 0; i < end; i++) {
      c0 = (c0 + bytes[i]) & 255;
      c1 = (c1 + c0) & 255;
    }
    return [c0, c1];
  }

  // The table number of a valid id, or null when `text` is not an id.
  hw.idTableNumber = (text) => {
    if (typeof text !== "string" || VALID_LENGTHS[text.length] !== true) return null;
    const bytes = base32Decode(text);
    if (bytes === null) return null;
    let table = 0, pos = 0;
    for (;;) {
      if (pos >= 5 || pos >= bytes.length) return null;
      const b = bytes[pos];
      table += (b & 0x7f) * 2 ** (7 * pos);
      pos++;
      if (b < 0x80) break;
    }
    if (table === 0 || table > TABLE_NUMBER_MAX) return null;
    if (pos > 1 && bytes[pos - 1] === 0) return null; // varint not minimal
    const end = pos + INTERNAL_ID_BYTES;
    if (bytes.length !== end + 2) return null;
    const [c0, c1] = fletcher16(bytes, end);
    if (bytes[end] !== c0 || bytes[end + 1] !== c1) return null;
    return table;
  };

  // Convex JSON of an int64 given as a decimal string: base64 of 8 bytes, little-endian.
  hw.int64Json = (decimal) => {
    let n = BigInt.asUintN(64, BigInt(decimal));
    let s = "";
    for (let i = 0; i < 8; i++) {
      s += String.fromCharCode(Number(n & 255n));
      n >>= 8n;
    }
    return { $integer: hw.btoa(s) };
  };
})(globalThis.__hw);
