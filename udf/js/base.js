// Headwater function runtime, part 1: the internal namespace and determinism.
//
// Every runtime file is evaluated once per V8 context, in order (base,
// encoding, inspect, ids, syscalls, guard, calls). They share one hidden global,
// `__hw`, frozen by calls.js once all parts are in. Per-call state lives in
// `S.call`, replaced at the start of every call, so nothing a call leaves
// there reaches the next one.
//
// Queries and mutations are deterministic: Math.random and crypto.getRandomValues
// are PRNGs seeded by the host for each call, Date is frozen to the host's
// timestamp, and timers and fetch throw. Actions get real time; their
// Math.random comes from a seed the host draws from the OS for each call, and
// crypto.getRandomValues from ChaCha20 keyed by 256 bits the host draws.
(function () {
  "use strict";
  const RealDate = globalThis.Date;
  const realNow = RealDate.now;
  const defineProperty = Object.defineProperty;

  // mini-racer installs its own timers (a non-deletable var); ours replace them below.
  globalThis.__timer_manager = undefined;

  const hw = {};
  defineProperty(globalThis, "__hw", { value: hw, enumerable: false, writable: false, configurable: false });

  // Mutable state shared by the runtime files. Each file takes it while the
  // context is set up; calls.js then removes `hw.S`, so user code cannot
  // reach the state of a call, nor keep anything in it for the next one.
  const S = { call: null };
  hw.S = S;
  hw.RealDate = RealDate;
  hw.realNow = () => realNow();

  const DETERMINISTIC = { query: true, mutation: true, analyze: true };
  hw.isDeterministic = () => S.call !== null && DETERMINISTIC[S.call.kind] === true;

  // --- seeded randomness: sfc32, seeded from two 32-bit halves of the host seed.
  function makeRandom(seedHi, seedLo) {
    let a = seedHi >>> 0, b = seedLo >>> 0, c = (seedHi ^ 0x9e3779b9) >>> 0, d = 1;
    function next32() {
      a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
      const t = (a + b) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      d = (d + 1) | 0;
      const r = (t + d) | 0;
      c = (c + r) | 0;
      return r >>> 0;
    }
    for (let i = 0; i < 15; i++) next32();
    return {
      next32,
      nextDouble() {
        // 53 random bits: 27 from one draw, 26 from the next.
        return ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
      },
    };
  }
  hw.makeRandom = makeRandom;
  hw.random = () => {
    if (S.call === null) throw new Error("Math.random() is not available outside a function call");
    return S.call.random.nextDouble();
  };
  defineProperty(Math, "random", {
    value: function random() { return hw.random(); },
    writable: true, enumerable: false, configurable: true,
  });

  // --- time: frozen in queries and mutations, real in actions.
  hw.now = () => {
    const call = S.call;
    if (call === null || call.kind === "action") return realNow();
    return call.nowMs;
  };
  // A Date whose "now" is the call's frozen time (named Date for stack traces).
  const Date = function Date(...args) {
    if (new.target === undefined) return new RealDate(hw.now()).toString();
    if (args.length === 0) return Reflect.construct(RealDate, [hw.now()], new.target);
    return Reflect.construct(RealDate, args, new.target);
  };
  defineProperty(Date, "length", { value: 7 });
  Date.prototype = RealDate.prototype;
  Date.now = function now() { return hw.now(); };
  Date.parse = RealDate.parse;
  Date.UTC = RealDate.UTC;
  defineProperty(RealDate.prototype, "constructor", { value: Date, writable: true, enumerable: false, configurable: true });
  defineProperty(globalThis, "Date", { value: Date, writable: true, enumerable: false, configurable: true });

  const performance = {
    timeOrigin: realNow(),
    now() {
      // Frozen in queries and at import, advancing in mutations and actions.
      const call = S.call;
      if (call === null || (call.kind !== "mutation" && call.kind !== "action")) return 0;
      return realNow() - call.startedMs;
    },
  };

  // --- things queries and mutations may not do.
  function refuse(what) {
    return new Error(`Can't use ${what} in queries and mutations. Please consider using an action. ` +
      "See https://docs.convex.dev/functions/actions for more details.");
  }
  hw.refuse = refuse;
  hw.requireAction = (what) => {
    if (hw.isDeterministic()) throw refuse(what);
  };

  // --- timers: only actions have them; the host waits for the earliest one.
  hw.setTimer = (what, fn, delay, args, repeat) => {
    hw.requireAction(what);
    const call = S.call;
    if (typeof fn !== "function") throw new TypeError(`${what}: the callback must be a function`);
    const ms = Math.max(0, Number(delay) || 0);
    const id = ++call.timerSeq;
    call.timers.set(id, { due: realNow() + ms, fn, args, repeat: repeat ? Math.max(1, ms) : 0 });
    return id;
  };
  hw.clearTimer = (id) => {
    if (S.call !== null) S.call.timers.delete(id);
  };
  globalThis.setTimeout = function setTimeout(fn, delay, ...args) { return hw.setTimer("setTimeout", fn, delay, args, false); };
  globalThis.setInterval = function setInterval(fn, delay, ...args) { return hw.setTimer("setInterval", fn, delay, args, true); };
  globalThis.clearTimeout = function clearTimeout(id) { hw.clearTimer(id); };
  globalThis.clearInterval = function clearInterval(id) { hw.clearTimer(id); };
  globalThis.queueMicrotask = function queueMicrotask(fn) {
    if (typeof fn !== "function") throw new TypeError("queueMicrotask: the callback must be a function");
    Promise.resolve().then(() => fn());
  };

  // --- user time: an evaluation's user code ends when the microtask queue has
  // drained, which happens after the host got the evaluation's reply. A waiter
  // woken by Atomics.notify is resumed by a task V8 posts behind that drain, so
  // it marks the moment (before the host's next evaluation starts).
  const waitAsync = Atomics.waitAsync;
  const notify = Atomics.notify;
  const cell = new Int32Array(new SharedArrayBuffer(4)); // one for all: allocating one costs
  hw.afterMicrotasks = (fn) => {
    const woken = waitAsync(cell, 0, 0).value;
    (async () => {
      await woken;
      fn();
    })();
    notify(cell, 0);
  };

  // Atomics.wait/waitAsync would let code block or resume outside the host's
  // control (and its time limit); nothing in a function needs them.
  delete Atomics.wait;
  delete Atomics.waitAsync;

  // --- crypto: randomness only in actions, from ChaCha20 keyed by 256 bits the
  // host draws from the OS for each action (not the Math.random generator).
  function chacha20Stream(key) {
    const state = new Uint32Array(16);
    state.set([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
    state.set(key, 4);
    const x = new Uint32Array(16);
    const out = new Uint8Array(64);
    const words = new Uint32Array(out.buffer);
    let used = 64;
    function quarter(a, b, c, d) {
      x[a] += x[b]; x[d] ^= x[a]; x[d] = (x[d] << 16) | (x[d] >>> 16);
      x[c] += x[d]; x[b] ^= x[c]; x[b] = (x[b] << 12) | (x[b] >>> 20);
      x[a] += x[b]; x[d] ^= x[a]; x[d] = (x[d] << 8) | (x[d] >>> 24);
      x[c] += x[d]; x[b] ^= x[c]; x[b] = (x[b] << 7) | (x[b] >>> 25);
    }
    function block() {
      x.set(state);
      for (let i = 0; i < 10; i++) {
        quarter(0, 4, 8, 12); quarter(1, 5, 9, 13); quarter(2, 6, 10, 14); quarter(3, 7, 11, 15);
        quarter(0, 5, 10, 15); quarter(1, 6, 11, 12); quarter(2, 7, 8, 13); quarter(3, 4, 9, 14);
      }
      for (let i = 0; i < 16; i++) words[i] = x[i] + state[i]; // little-endian hosts (x86, arm)
      if (++state[12] === 0) state[13]++;
      used = 0;
    }
    return (bytes) => {
      for (let i = 0; i < bytes.length; i++) {
        if (used === 64) block();
        bytes[i] = out[used++];
      }
    };
  }
  hw.chacha20Stream = chacha20Stream;

  // Queries and mutations get values from the call's seed (deterministic, as
  // Convex's runtime gives them), actions from the host's 256 bits.
  hw.makeCryptoRandom = (config) => {
    if (Array.isArray(config.cryptoKey)) return chacha20Stream(config.cryptoKey);
    return chacha20Stream([config.seed[0], config.seed[1], 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344,
      0xa4093822, 0x299f31d0]);
  };

  function fillRandom(view) {
    if (S.call === null) throw new Error("crypto.getRandomValues() is not available outside a function call");
    if (view instanceof Float32Array || view instanceof Float64Array) {
      throw new hw.DOMException("The provided ArrayBufferView is not an integer array type", "TypeMismatchError");
    }
    if (!ArrayBuffer.isView(view)) throw new TypeError("Failed to execute 'getRandomValues' on 'Crypto': expected a typed array");
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    if (bytes.length > 65536) {
      throw new TypeError(`Byte length (${bytes.length}) exceeds the number of bytes of entropy available via ` +
        "this API (65536)");
    }
    S.call.cryptoRandom(bytes);
    return view;
  }
  globalThis.crypto = {
    getRandomValues: fillRandom,
    randomUUID() {
      const b = fillRandom(new Uint8Array(16));
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  };

  // --- process.env: the deployment's environment variables, read-only.
  const env = new Proxy({}, {
    get(_t, name) {
      if (typeof name !== "string" || S.call === null) return undefined;
      // auth.config is evaluated with every variable it names required (Convex's rule).
      if (S.call.envRequired && !Object.hasOwn(S.call.env, name)) {
        throw new Error(`Environment variable ${name} is used in auth config file but its value was not set`);
      }
      return S.call.env[name];
    },
    has(_t, name) { return typeof name === "string" && S.call !== null && Object.hasOwn(S.call.env, name); },
    ownKeys() { return S.call === null ? [] : Object.keys(S.call.env); },
    getOwnPropertyDescriptor(_t, name) {
      if (typeof name !== "string" || S.call === null || !Object.hasOwn(S.call.env, name)) return undefined;
      return { value: S.call.env[name], writable: false, enumerable: true, configurable: true };
    },
    set() { return false; },
    deleteProperty() { return false; },
  });
  globalThis.process = { env };
  globalThis.performance = performance;
  globalThis.self = globalThis;
  // WeakRef keeps its target (deterministic: GC must not be observable).
  globalThis.WeakRef = class WeakRef {
    #target;
    constructor(target) { this.#target = target; }
    deref() { return this.#target; }
  };
  globalThis.FinalizationRegistry = class FinalizationRegistry {
    constructor(_callback) {}
    register() {}
    unregister() { return false; }
  };
})();
