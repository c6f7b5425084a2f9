// Headwater function runtime, part 3: console output as log lines.
//
// Each console call becomes one line: the level in brackets, then every
// argument formatted the way object-inspect does (strings quoted, objects on
// one line, depth-limited), joined by spaces: `[LOG] 'hello' { a: 1 }`.
// A call keeps at most `logLinesMax` lines (then one overflow notice), each
// at most `logLineBytesMax` bytes (longer ones are cut with a suffix).
(function (hw) {
  "use strict";
  const S = hw.S;
  const MAX_DEPTH = 5;
  const MAX_ITEMS = 100;
  const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

  function quote(s) {
    return "'" + s.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n") + "'";
  }

  function key(k) {
    if (typeof k === "symbol") return "[" + k.toString() + "]";
    return IDENTIFIER.test(k) ? k : quote(k);
  }

  function fnName(f) {
    return f.name ? `[Function: ${f.name}]` : "[Function (anonymous)]";
  }

  function inspect(value, depth, seen) {
    switch (typeof value) {
      case "string": return quote(value);
      case "number": return Object.is(value, -0) ? "-0" : String(value);
      case "bigint": return `${value}n`;
      case "boolean": return String(value);
      case "undefined": return "undefined";
      case "symbol": return value.toString();
      case "function": return fnName(value);
    }
    if (value === null) return "null";
    if (seen.includes(value)) return "[Circular]";
    if (value instanceof Error) return value.message ? `[${value.name}: ${value.message}]` : `[${value.name}]`;
    if (value instanceof hw.RealDate) {
      return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
    }
    if (value instanceof RegExp) return String(value);
    if (value instanceof Promise) return "Promise { <pending> }";
    const nested = seen.concat([value]);
    const inner = (v) => inspect(v, depth + 1, nested);
    if (Array.isArray(value)) {
      if (depth >= MAX_DEPTH) return "[Array]";
      const items = value.slice(0, MAX_ITEMS).map(inner);
      if (value.length > MAX_ITEMS) items.push(`... ${value.length - MAX_ITEMS} more items`);
      return items.length === 0 ? "[]" : `[ ${items.join(", ")} ]`;
    }
    if (value instanceof Map) {
      if (depth >= MAX_DEPTH) return "[Map]";
      const items = [];
      value.forEach((v, k) => items.push(`${inner(k)} => ${inner(v)}`));
      return `Map (${value.size}) {${items.join(", ")}}`;
    }
    if (value instanceof Set) {
      if (depth >= MAX_DEPTH) return "[Set]";
      const items = [];
      value.forEach((v) => items.push(inner(v)));
      return `Set (${value.size}) {${items.join(", ")}}`;
    }
    if (value instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${value.byteLength} }`;
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      if (depth >= MAX_DEPTH) return `[${value.constructor.name}]`;
      const items = Array.from(value.subarray(0, MAX_ITEMS), (x) => inner(x));
      return `${value.constructor.name}(${value.length}) [ ${items.join(", ")} ]`;
    }
    if (depth >= MAX_DEPTH) return "[Object]";
    const keys = Reflect.ownKeys(value).filter((k) => Object.prototype.propertyIsEnumerable.call(value, k));
    const proto = Object.getPrototypeOf(value);
    const tag = proto === null ? "[Object: null prototype] "
      : proto !== Object.prototype && proto.constructor && proto.constructor.name ? proto.constructor.name + " " : "";
    if (keys.length === 0) return tag + "{}";
    const items = keys.map((k) => `${key(k)}: ${inner(value[k])}`);
    return `${tag}{ ${items.join(", ")} }`;
  }

  function format(args) {
    const parts = [];
    for (let i = 0; i < args.length; i++) {
      try {
        parts.push(inspect(args[i], 0, []));
      } catch (e) {
        parts.push("[uninspectable]");
      }
    }
    return parts.join(" ");
  }
  hw.inspect = (value) => inspect(value, 0, []);

  function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 2 : 3;
    }
    return n;
  }

  const TRUNCATED = " (truncated due to length)";
  hw.pushLog = (level, text) => {
    const call = S.call;
    if (call === null) return;
    if (call.logLines.length >= call.logLinesMax) {
      if (!call.logOverflow) {
        call.logOverflow = true;
        call.logLines.push(`[ERROR] Log overflow (maximum ${call.logLinesMax}). Remaining log lines omitted.`);
      }
      return;
    }
    let line = `[${level}] ${text}`;
    if (utf8Length(line) > call.logLineBytesMax) {
      let cut = Math.max(0, call.logLineBytesMax - TRUNCATED.length);
      line = line.slice(0, cut);
      while (utf8Length(line) > cut) line = line.slice(0, -1);
      line += TRUNCATED;
    }
    call.logLines.push(line);
  };

  const timers = new Map();
  const counts = new Map();
  const console = {
    log(...args) { hw.pushLog("LOG", format(args)); },
    info(...args) { hw.pushLog("INFO", format(args)); },
    warn(...args) { hw.pushLog("WARN", format(args)); },
    error(...args) { hw.pushLog("ERROR", format(args)); },
    debug(...args) { hw.pushLog("DEBUG", format(args)); },
    trace(...args) {
      const stack = new Error().stack.split("\n").slice(2).join("\n");
      hw.pushLog("LOG", format(args) + (stack ? "\n" + stack : ""));
    },
    assert(condition, ...args) {
      if (!condition) hw.pushLog("ERROR", "Assertion failed" + (args.length ? ": " + format(args) : ""));
    },
    count(label = "default") {
      const n = (counts.get(label) || 0) + 1;
      counts.set(label, n);
      hw.pushLog("INFO", `${label}: ${n}`);
    },
    time(label = "default") {
      if (timers.has(label)) hw.pushLog("WARN", `Timer '${label}' already exists`);
      else timers.set(label, hw.now());
    },
    timeLog(label = "default", ...args) {
      if (!timers.has(label)) return hw.pushLog("WARN", `Timer '${label}' does not exist`);
      const extra = args.length ? " " + format(args) : "";
      hw.pushLog("INFO", `${label}: ${hw.now() - timers.get(label)}ms${extra}`);
    },
    timeEnd(label = "default") {
      if (!timers.has(label)) return hw.pushLog("WARN", `Timer '${label}' does not exist`);
      hw.pushLog("INFO", `${label}: ${hw.now() - timers.get(label)}ms`);
      timers.delete(label);
    },
  };
  hw.resetConsole = () => {
    timers.clear();
    counts.clear();
  };
  Object.defineProperty(globalThis, "console", { value: console, writable: true, enumerable: false, configurable: true });
})(globalThis.__hw);
