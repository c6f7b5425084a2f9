// Headwater function runtime, part 6: what a thrown value tells the host.
//
// Convex (crates/isolate/src/error.rs, npm-packages/udf-runtime/src/errors.ts)
// reads an uncaught error as: `Uncaught <name>: <message>` when the value is an
// Error (its prototype chain reaches Error.prototype), with the structured V8
// call sites of its stack; anything else gets V8's own message for an uncaught
// exception (`Uncaught a string`, `Uncaught #<Object>`) and no frames. The
// host maps the call sites through the source maps and prints them as Convex
// does (udf/stack_frames.py).
//
// Error.prepareStackTrace keeps each error's call sites aside (V8 calls it the
// first time `stack` is read) and returns V8's usual text, so `e.stack` reads
// as it always did for user code.
(function (hw) {
  "use strict";
  const errorPrototype = Error.prototype;
  const isPrototypeOf = Object.prototype.isPrototypeOf;
  const errorToString = Error.prototype.toString;
  const objectToString = Object.prototype.toString;
  const getPrototypeOf = Object.getPrototypeOf;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const apply = Reflect.apply;
  const stringify = JSON.stringify;
  const toStringTag = Symbol.toStringTag;
  const StringOf = String;
  const sitesOf = new WeakMap();

  function frameOf(site) {
    return {
      typeName: site.getTypeName(),
      functionName: site.getFunctionName(),
      methodName: site.getMethodName(),
      // Our modules are evaluated scripts named by `//# sourceURL=convex:/<path>`.
      fileName: site.getScriptNameOrSourceURL() ?? site.getFileName() ?? null,
      lineNumber: site.getLineNumber(),
      columnNumber: site.getColumnNumber(),
      evalOrigin: site.getEvalOrigin() ?? null,
      isToplevel: site.isToplevel(),
      isEval: site.isEval(),
      isNative: site.isNative(),
      isConstructor: site.isConstructor(),
      isAsync: site.isAsync(),
      isPromiseAll: site.isPromiseAll(),
      promiseIndex: site.getPromiseIndex(),
    };
  }

  function header(error) {
    try {
      return apply(errorToString, error, []);
    } catch {
      return "Error";
    }
  }

  Error.prepareStackTrace = (error, sites) => {
    if (error !== null && typeof error === "object") {
      try {
        sitesOf.set(error, sites.map(frameOf));
      } catch {
        // A call site V8 cannot describe: the error keeps no frames.
      }
    }
    let text = header(error);
    for (const site of sites) text += "\n    at " + StringOf(site);
    return text;
  };

  const isError = (v) => v !== null && typeof v === "object" && apply(isPrototypeOf, errorPrototype, [v]);

  // A data property found along the prototype chain, without running getters.
  function dataProperty(o, key) {
    for (let p = o; p !== null; p = getPrototypeOf(p)) {
      const d = getOwnPropertyDescriptor(p, key);
      if (d !== undefined) return "value" in d ? d.value : undefined;
    }
    return undefined;
  }

  // V8's Object::NoSideEffectsToString, the text of `Uncaught <value>`.
  function noSideEffectsText(v) {
    if (typeof v === "symbol") return apply(Symbol.prototype.toString, v, []);
    if (v === null || (typeof v !== "object" && typeof v !== "function")) return StringOf(v);
    try {
      const toString = dataProperty(v, "toString");
      if (toString === errorToString) return header(v);
      if (toString === objectToString) {
        const ctor = dataProperty(v, "constructor");
        const name = typeof ctor === "function" ? dataProperty(ctor, "name") : undefined;
        if (typeof name === "string" && name !== "") return `#<${name}>`;
      }
      const tag = dataProperty(v, toStringTag);
      return `[object ${typeof tag === "string" ? tag : apply(objectToString, v, []).slice(8, -1)}]`;
    } catch {
      return "[object Object]";
    }
  }

  function propertyText(e, key, fallback) {
    try {
      const value = e[key];
      return value === undefined ? fallback : StringOf(value);
    } catch {
      return fallback;
    }
  }

  // crates/isolate/src/helpers.rs format_uncaught_error
  function uncaught(message, name) {
    if (name !== "" && message !== "") return `Uncaught ${name}: ${message}`;
    if (name !== "") return `Uncaught ${name}`;
    if (message !== "") return `Uncaught ${message}`;
    return "Uncaught";
  }

  // {code, message, data (ConvexError data, JSON text), frames (call sites)}
  hw.describeError = (e, code) => {
    if (!isError(e)) return { code, message: `Uncaught ${noSideEffectsText(e)}`, data: null, frames: [] };
    const message = uncaught(propertyText(e, "message", ""), propertyText(e, "name", "Error"));
    try {
      void e.stack; // runs prepareStackTrace once
    } catch {
      // a getter that throws: no frames
    }
    const frames = sitesOf.get(e) ?? [];
    let data = null;
    try {
      const symbol = e.ConvexErrorSymbol;
      if (typeof symbol === "symbol" && e[symbol] === true && e.data !== undefined) {
        data = typeof e.data === "string" ? e.data : stringify(e.data);
      }
    } catch {
      data = null;
    }
    return { code, message, data, frames };
  };
})(globalThis.__hw);
