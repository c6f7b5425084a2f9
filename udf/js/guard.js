// Headwater function runtime, part 6: the guard that undoes a call's changes
// to the globals, so one context can serve many calls without leaks.
//
// At seal time the guard walks the global object, every global value, the
// constructors inside namespaces (Intl, WebAssembly...), the prototypes of
// all of these, the hidden intrinsic prototypes (iterators, generators,
// typed arrays) and the prototypes of the convex library's classes, and
// sorts what it finds:
// - the objects user code does change (COMMON below: the global object, the
//   core constructors and prototypes, console) stay open; after each call
//   their property descriptors are compared with the recorded ones, and a
//   changed object gets all its recorded properties back (additions deleted);
// - everything else (methods, Intl, typed arrays, iterator prototypes, the
//   library's classes...) is frozen, so there is nothing to check. The price:
//   assigning to an instance a property that such a frozen prototype holds
//   (`typedArray.toString = f`) fails, as adding methods to them does.
// Checking every object instead costs about twice as much per call.
//
// The guard never runs code a call left behind: it reads property
// descriptors (never values, which could be getters), only their own fields,
// and uses only functions captured here before user code ran; so the host may
// run it without a time limit. A change it cannot undo (a property
// made non-configurable) makes the host rebuild the isolate.
(function (hw) {
  "use strict";
  const ownKeys = Reflect.ownKeys;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const defineProperty = Object.defineProperty;
  const deleteProperty = Reflect.deleteProperty;
  const isExtensible = Object.isExtensible;
  const freeze = Object.freeze;
  const getPrototypeOf = Object.getPrototypeOf;
  const objectCreate = Object.create;
  const setPrototypeOf = Object.setPrototypeOf;
  const hasOwn = Object.hasOwn;
  const apply = Reflect.apply;
  const regexpExec = RegExp.prototype.exec;
  const RealDate = hw.RealDate;

  const COMMON = [
    Object, Object.prototype, Function, Function.prototype, Array, Array.prototype,
    String, String.prototype, Number, Number.prototype, Boolean, Boolean.prototype,
    Symbol, Symbol.prototype, BigInt, BigInt.prototype, Promise, Promise.prototype,
    Error, Error.prototype, TypeError.prototype, RangeError.prototype,
    globalThis.Date, RealDate.prototype, RegExp, RegExp.prototype,
    Map, Map.prototype, Set, Set.prototype, WeakMap.prototype, WeakSet.prototype,
    JSON, Math, Reflect, globalThis.console,
  ];

  function isObject(o) {
    return o !== null && (typeof o === "object" || typeof o === "function");
  }

  function isMethod(o) {
    return typeof o === "function" && getOwnPropertyDescriptor(o, "prototype") === undefined;
  }

  function collect(libraryNamespaces) {
    const seen = new Set();
    const objects = [];
    const methods = [];
    const add = (o) => {
      if (!isObject(o) || seen.has(o)) return;
      seen.add(o);
      if (isMethod(o)) {
        methods.push(o);
        return;
      }
      objects.push(o);
      const proto = typeof o === "function" ? getOwnPropertyDescriptor(o, "prototype") : undefined;
      if (proto !== undefined && "value" in proto) add(proto.value);
    };
    add(globalThis);
    for (const key of ownKeys(globalThis)) {
      const d = getOwnPropertyDescriptor(globalThis, key);
      if (key === "__hw" || key === "process" || !("value" in d)) continue;
      add(d.value);
      if (isObject(d.value) && typeof d.value !== "function") {
        for (const inner of ownKeys(d.value)) {
          const di = getOwnPropertyDescriptor(d.value, inner);
          if ("value" in di && typeof di.value === "function") add(di.value);
        }
      }
    }
    add(globalThis.process);
    for (const f of [function () {}, async function () {}, function* () {}, async function* () {}]) {
      const kind = getPrototypeOf(f);
      add(kind);
      if (kind.prototype) {
        add(kind.prototype);
        add(getPrototypeOf(kind.prototype));
      }
    }
    add(getPrototypeOf(Uint8Array));
    for (const it of [[][Symbol.iterator](), new Map().entries(), new Set().values(), ""[Symbol.iterator](),
      /a/[Symbol.matchAll]("")]) {
      add(getPrototypeOf(it));
      add(getPrototypeOf(getPrototypeOf(it)));
    }
    for (const ns of libraryNamespaces) {
      for (const key of Object.keys(ns)) add(ns[key]);
    }
    // Methods of everything found so far, and accessor functions.
    for (let i = 0; i < objects.length; i++) {
      const o = objects[i];
      for (const key of ownKeys(o)) {
        const d = getOwnPropertyDescriptor(o, key);
        if ("value" in d) {
          if (isMethod(d.value) && !seen.has(d.value)) { seen.add(d.value); methods.push(d.value); }
        } else {
          for (const f of [d.get, d.set]) if (f !== undefined && !seen.has(f)) { seen.add(f); methods.push(f); }
        }
      }
    }
    return { objects, methods };
  }

  // Recorded descriptors have no prototype, so handing them to defineProperty
  // cannot reach a getter a call put on Object.prototype (setPrototypeOf is
  // slow: done once, at seal). Their fields are kept in flat arrays for speed.
  function snapshot(o) {
    const keys = ownKeys(o);
    const descs = [], isData = [], first = [], second = [], flags = [];
    for (let i = 0; i < keys.length; i++) {
      const d = getOwnPropertyDescriptor(o, keys[i]);
      isData[i] = hasOwn(d, "value");
      first[i] = isData[i] ? d.value : d.get;
      second[i] = isData[i] ? d.writable : d.set;
      flags[i] = (d.enumerable ? 1 : 0) | (d.configurable ? 2 : 0);
      descs[i] = setPrototypeOf(d, null);
    }
    return { o, keys, descs, isData, first, second, flags };
  }

  // A fresh descriptor is read only for fields it owns (a data descriptor owns
  // value/writable, an accessor get/set): those reads never reach a getter.
  function changed(s) {
    const o = s.o;
    if (ownKeys(o).length !== s.keys.length || !isExtensible(o)) return true;
    for (let i = 0; i < s.keys.length; i++) {
      const d = getOwnPropertyDescriptor(o, s.keys[i]);
      if (d === undefined) return true;
      const isData = hasOwn(d, "value");
      if (isData !== s.isData[i]) return true;
      if ((isData ? d.value : d.get) !== s.first[i]) return true;
      if ((isData ? d.writable : d.set) !== s.second[i]) return true;
      if (((d.enumerable ? 1 : 0) | (d.configurable ? 2 : 0)) !== s.flags[i]) return true;
    }
    return false;
  }

  function restore(s) {
    const o = s.o;
    let ok = true;
    const wanted = objectCreate(null);
    for (let i = 0; i < s.keys.length; i++) wanted[s.keys[i]] = true;
    const now = ownKeys(o);
    for (let i = 0; i < now.length; i++) {
      if (wanted[now[i]] !== true && !deleteProperty(o, now[i])) ok = false;
    }
    for (let i = 0; i < s.keys.length; i++) {
      try {
        defineProperty(o, s.keys[i], s.descs[i]);
      } catch (e) {
        ok = false;
      }
    }
    return ok && isExtensible(o);
  }

  hw.makeGuard = (libraryNamespaces) => {
    const common = new Set(COMMON);
    common.add(globalThis);
    const { objects, methods } = collect(libraryNamespaces);
    for (let i = 0; i < methods.length; i++) freeze(methods[i]);
    const snapshots = [];
    for (let i = 0; i < objects.length; i++) {
      const o = objects[i];
      if (common.has(o)) snapshots[snapshots.length] = snapshot(o);
      else freeze(o);
    }
    return {
      restore() {
        let ok = true;
        for (let i = 0; i < snapshots.length; i++) {
          if (changed(snapshots[i]) && !restore(snapshots[i])) ok = false;
        }
        apply(regexpExec, /(?:)/, [""]); // forget the last match (RegExp.lastMatch and friends)
        return ok;
      },
      count: snapshots.length,
    };
  };
})(globalThis.__hw);
