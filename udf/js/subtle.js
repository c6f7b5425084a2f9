// Headwater function runtime, part 5: crypto.subtle (digest, importKey, sign,
// verify) and CryptoKey. The host does the cryptography (udf/subtle_crypto.py)
// through async ops; a CryptoKey keeps its key material (as the host normalized
// it at import) here, out of user code's reach, and sends it with each use.
// Deterministic operations work in queries and mutations too; randomized
// signatures (ECDSA, RSA-PSS) are refused there, as Convex refuses them.
(function (hw) {
  "use strict";
  const DOMException = hw.DOMException;
  const stringify = JSON.stringify;
  const parse = JSON.parse;

  const NAMES = {};
  for (const name of ["SHA-1", "SHA-256", "SHA-384", "SHA-512", "HMAC", "RSASSA-PKCS1-v1_5", "RSA-PSS", "ECDSA",
    "RSA-OAEP", "AES-GCM", "AES-CBC", "AES-CTR", "AES-KW", "ECDH", "Ed25519", "X25519", "HKDF", "PBKDF2"]) {
    NAMES[name.toUpperCase()] = name;
  }
  const SUPPORTED = ["SHA-1", "SHA-256", "SHA-384", "SHA-512", "HMAC", "RSASSA-PKCS1-v1_5", "RSA-PSS", "ECDSA"];

  function normalizeName(name) {
    const found = typeof name === "string" ? NAMES[name.toUpperCase()] : undefined;
    if (found === undefined || !SUPPORTED.includes(found)) {
      throw new DOMException(`Unrecognized algorithm name: ${name}`, "NotSupportedError");
    }
    return found;
  }

  function normalizeAlgorithm(algorithm) {
    const given = typeof algorithm === "string" ? { name: algorithm } : algorithm;
    if (given === null || typeof given !== "object") throw new TypeError("Algorithm: expected a name or an object");
    const out = { name: normalizeName(given.name) };
    if (given.hash !== undefined) out.hash = normalizeName(typeof given.hash === "string" ? given.hash : given.hash?.name);
    for (const key of ["namedCurve", "saltLength", "length"]) if (given[key] !== undefined) out[key] = given[key];
    if (typeof out.hash === "string" && out.hash.startsWith("SHA") === false) {
      throw new DOMException(`Unrecognized hash algorithm: ${out.hash}`, "NotSupportedError");
    }
    return out;
  }

  function bytesOf(data, what) {
    let view;
    if (data instanceof ArrayBuffer) view = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else throw new TypeError(`${what}: expected an ArrayBuffer or a typed array`);
    let s = "";
    for (let i = 0; i < view.length; i += 0x8000) s += String.fromCharCode.apply(null, view.subarray(i, i + 0x8000));
    return btoa(s);
  }

  function toBuffer(text) {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out.buffer;
  }

  // Host errors come as "<DOMException name>: <message>" (or Convex's refusal text).
  async function op(name, args) {
    try {
      return parse(await hw.startOp(`headwater/crypto/${name}`, stringify(args)).promise);
    } catch (e) {
      const m = /^([A-Za-z]+Error): ([\s\S]*)$/.exec(e.message);
      if (m !== null && m[1] !== "Error") throw new DOMException(m[2], m[1]);
      throw e;
    }
  }

  const MATERIAL = new WeakMap();
  let constructing = false;
  class CryptoKey {
    #type; #extractable; #algorithm; #usages;
    constructor(type, extractable, algorithm, usages) {
      if (!constructing) throw new TypeError("Illegal constructor");
      this.#type = type;
      this.#extractable = extractable;
      this.#algorithm = Object.freeze(algorithm);
      this.#usages = Object.freeze(usages);
    }
    get type() { return this.#type; }
    get extractable() { return this.#extractable; }
    get algorithm() { return this.#algorithm; }
    get usages() { return this.#usages; }
    get [Symbol.toStringTag]() { return "CryptoKey"; }
  }

  function makeKey(answer, extractable, usages) {
    const algorithm = answer.algorithm;
    if (algorithm.publicExponent !== undefined) algorithm.publicExponent = new Uint8Array(toBuffer(algorithm.publicExponent));
    constructing = true;
    let key;
    try {
      key = new CryptoKey(answer.type, extractable, algorithm, usages);
    } finally {
      constructing = false;
    }
    MATERIAL.set(key, { type: answer.type, algorithm: { ...answer.algorithm, publicExponent: undefined }, material: answer.material });
    return key;
  }

  function keyFor(key, usage) {
    const held = key instanceof CryptoKey ? MATERIAL.get(key) : undefined;
    if (held === undefined) throw new TypeError("Expected a CryptoKey");
    if (!key.usages.includes(usage)) {
      throw new DOMException(`The key does not support the '${usage}' operation`, "InvalidAccessError");
    }
    return held;
  }

  function requireRandomness(algorithm) {
    if (algorithm.name === "ECDSA" || algorithm.name === "RSA-PSS") hw.requireAction("cryptographic randomness");
  }

  const subtle = {
    async digest(algorithm, data) {
      const name = normalizeAlgorithm(algorithm).name;
      return toBuffer((await op("digest", { algorithm: name, data: bytesOf(data, "digest") })).result);
    },
    async importKey(format, keyData, algorithm, extractable, keyUsages) {
      const alg = normalizeAlgorithm(algorithm);
      let data;
      if (format === "jwk") {
        if (keyData === null || typeof keyData !== "object") throw new TypeError("importKey: a JWK must be an object");
        data = { ...keyData };
      } else if (format === "raw" || format === "spki" || format === "pkcs8") {
        data = bytesOf(keyData, "importKey");
      } else {
        throw new TypeError(`importKey: unknown key format '${format}'`);
      }
      const usages = Array.from(keyUsages ?? [], String);
      const answer = await op("importKey", { format, keyData: data, algorithm: alg });
      const allowed = answer.type === "public" ? ["verify"] : answer.type === "private" ? ["sign"] : ["sign", "verify"];
      for (const usage of usages) {
        if (!allowed.includes(usage)) throw new DOMException(`Unsupported key usage for this key: ${usage}`, "SyntaxError");
      }
      if (usages.length === 0 && answer.type !== "public") {
        throw new DOMException("Usages cannot be empty when creating a key.", "SyntaxError");
      }
      return makeKey(answer, Boolean(extractable), usages);
    },
    async sign(algorithm, key, data) {
      const alg = normalizeAlgorithm(algorithm);
      const held = keyFor(key, "sign");
      requireRandomness(alg);
      return toBuffer((await op("sign", { algorithm: alg, key: held, data: bytesOf(data, "sign") })).result);
    },
    async verify(algorithm, key, signature, data) {
      const alg = normalizeAlgorithm(algorithm);
      const held = keyFor(key, "verify");
      const args = { algorithm: alg, key: held, signature: bytesOf(signature, "verify"), data: bytesOf(data, "verify") };
      return (await op("verify", args)).result;
    },
  };
  for (const name of ["encrypt", "decrypt", "generateKey", "deriveKey", "deriveBits", "exportKey", "wrapKey",
    "unwrapKey"]) {
    subtle[name] = async function () {
      throw new DOMException(`crypto.subtle.${name} is not supported by this runtime`, "NotSupportedError");
    };
  }

  globalThis.crypto.subtle = Object.freeze(subtle);
  Object.defineProperty(globalThis, "CryptoKey", { value: CryptoKey, writable: true, enumerable: false, configurable: true });
})(globalThis.__hw);
