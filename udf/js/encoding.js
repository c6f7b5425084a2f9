// Headwater function runtime, part 2: web globals V8 lacks and user code
// (and the convex npm package) expects: TextEncoder, TextDecoder, atob, btoa,
// structuredClone. UTF-8 only, no streaming; enough for server functions.
(function (hw) {
  "use strict";

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") {
      const s = String(input);
      const out = new Uint8Array(s.length * 3);
      let n = 0;
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            i++;
          }
        }
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate
        if (c < 0x80) out[n++] = c;
        else if (c < 0x800) { out[n++] = 0xc0 | (c >> 6); out[n++] = 0x80 | (c & 63); }
        else if (c < 0x10000) {
          out[n++] = 0xe0 | (c >> 12); out[n++] = 0x80 | ((c >> 6) & 63); out[n++] = 0x80 | (c & 63);
        } else {
          out[n++] = 0xf0 | (c >> 18); out[n++] = 0x80 | ((c >> 12) & 63);
          out[n++] = 0x80 | ((c >> 6) & 63); out[n++] = 0x80 | (c & 63);
        }
      }
      return out.slice(0, n);
    }
    encodeInto(input, dest) {
      const bytes = this.encode(input);
      const n = Math.min(bytes.length, dest.length);
      dest.set(bytes.subarray(0, n));
      return { read: String(input).length, written: n };
    }
  }

  function toBytes(input) {
    if (input === undefined) return new Uint8Array(0);
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    throw new TypeError("TextDecoder.decode: expected an ArrayBuffer or a typed array");
  }

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      const name = String(label).toLowerCase();
      if (name !== "utf-8" && name !== "utf8" && name !== "unicode-1-1-utf-8") {
        throw new RangeError(`TextDecoder: unsupported encoding ${label}`);
      }
      this.#fatal = Boolean(options.fatal);
      this.#ignoreBOM = Boolean(options.ignoreBOM);
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input) {
      const b = toBytes(input);
      let i = 0;
      if (!this.#ignoreBOM && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) i = 3;
      const parts = [];
      let codes = [];
      const bad = () => {
        if (this.#fatal) throw new TypeError("TextDecoder: the data is not valid UTF-8");
        return 0xfffd;
      };
      while (i < b.length) {
        const c = b[i];
        let cp, need, min;
        if (c < 0x80) { cp = c; need = 0; min = 0; }
        else if (c >= 0xc2 && c < 0xe0) { cp = c & 31; need = 1; min = 0x80; }
        else if (c >= 0xe0 && c < 0xf0) { cp = c & 15; need = 2; min = 0x800; }
        else if (c >= 0xf0 && c < 0xf5) { cp = c & 7; need = 3; min = 0x10000; }
        else { codes.push(bad()); i++; continue; }
        let j = 1;
        for (; j <= need; j++) {
          const x = b[i + j];
          if (x === undefined || (x & 0xc0) !== 0x80) break;
          cp = (cp << 6) | (x & 63);
        }
        if (j <= need || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
          codes.push(bad());
          i += Math.max(1, j);
          continue;
        }
        i += need + 1;
        if (cp >= 0x10000) {
          cp -= 0x10000;
          codes.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 1023));
        } else codes.push(cp);
        if (codes.length > 8192) { parts.push(String.fromCharCode.apply(null, codes)); codes = []; }
      }
      parts.push(String.fromCharCode.apply(null, codes));
      return parts.join("");
    }
  }

  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const B64_INDEX = new Map(Array.from(B64, (c, i) => [c, i]));

  function btoa(data) {
    const s = String(data);
    let out = "";
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) {
        throw new DOMException("btoa: the string contains characters outside Latin-1", "InvalidCharacterError");
      }
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += B64[n >> 18] + B64[(n >> 12) & 63];
      out += i + 1 < s.length ? B64[(n >> 6) & 63] : "=";
      out += i + 2 < s.length ? B64[n & 63] : "=";
    }
    return out;
  }

  function atob(data) {
    let s = String(data).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
      throw new DOMException("atob: the string is not correctly encoded", "InvalidCharacterError");
    }
    let out = "";
    let bits = 0, acc = 0;
    for (let i = 0; i < s.length; i++) {
      acc = (acc << 6) | B64_INDEX.get(s[i]);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((acc >> bits) & 255);
      }
    }
    return out;
  }

  class DOMException extends Error {
    constructor(message = "", name = "Error") {
      super(message);
      Object.defineProperty(this, "name", { value: name, writable: true, configurable: true });
    }
  }

  function structuredClone(value) {
    const seen = new Map();
    function clone(v) {
      if (typeof v !== "object" || v === null) {
        if (typeof v === "function" || typeof v === "symbol") {
          throw new DOMException(`${String(v)} could not be cloned.`, "DataCloneError");
        }
        return v;
      }
      if (seen.has(v)) return seen.get(v);
      let out;
      if (Array.isArray(v)) {
        out = new Array(v.length);
        seen.set(v, out);
        for (let i = 0; i < v.length; i++) if (i in v) out[i] = clone(v[i]);
        return out;
      }
      if (v instanceof hw.RealDate) out = new hw.RealDate(v.getTime());
      else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
      else if (v instanceof ArrayBuffer) out = v.slice(0);
      else if (ArrayBuffer.isView(v)) out = new v.constructor(clone(v.buffer), v.byteOffset, v.length ?? v.byteLength);
      else if (v instanceof Map) {
        out = new Map();
        seen.set(v, out);
        v.forEach((val, key) => out.set(clone(key), clone(val)));
        return out;
      } else if (v instanceof Set) {
        out = new Set();
        seen.set(v, out);
        v.forEach((val) => out.add(clone(val)));
        return out;
      } else if (v instanceof Error) {
        out = new Error(v.message);
        out.name = v.name;
      } else if (v instanceof Boolean || v instanceof Number || v instanceof String || v instanceof BigInt) {
        out = Object(v.valueOf());
      } else {
        out = {};
        seen.set(v, out);
        for (const key of Object.keys(v)) out[key] = clone(v[key]);
        return out;
      }
      seen.set(v, out);
      return out;
    }
    return clone(value);
  }

  globalThis.TextEncoder = TextEncoder;
  globalThis.TextDecoder = TextDecoder;
  globalThis.atob = atob;
  globalThis.btoa = btoa;
  globalThis.DOMException = DOMException;
  globalThis.structuredClone = structuredClone;
  hw.btoa = btoa;
  hw.atob = atob;
})(globalThis.__hw);
