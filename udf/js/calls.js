// Headwater function runtime, part 7: modules, calls and the reset between calls.
//
// The host drives a call with short evals (JSON text in, JSON text out):
//   __hw.start(configJson)   set up the call, make a fresh instance of the
//                            module, invoke the export (user code runs here)
//   __hw.poll()              after the microtasks drained: {"ops": [...]}
//                            to run, {"wait": ms} for an action timer
//                            ({"wait": null}: only for ops the host runs in
//                            the background), or
//                            {"done": {...}, "reset": "ok"|"broken"} (the
//                            call is over and the context reset)
//   __hw.resume(results)     settle the ops' promises (user code runs)
//   __hw.fireTimer()         run the earliest due action timer (user code runs)
//   __hw.takeResult()        the finished call's result (JSON text), once,
//                            when it was too large to ride in "done"
//   __hw.reset()             end a call the host abandons (time or heap
//                            limit, handler failure): "ok" or "broken"
//
// Modules: each module (CommonJS, see udf/module_compiler.py) registers a
// factory `(require, module, exports)` with __hw.define before the context is
// sealed; `require("./_deps/X.js")` resolves against the requiring module's
// path. Library chunks (only packages and _generated/ code) are instantiated
// once at seal and frozen; every other module gets fresh instances on every
// call, one per call even when several modules share it, so module-level
// state never outlives the call.
//
// Reset: `seal` sets up the guard (guard.js) once everything is loaded;
// `reset` ends the call and undoes what it did to the globals.
(function (hw) {
  "use strict";
  const S = hw.S;
  const objectCreate = Object.create;
  const freeze = Object.freeze;
  const stringify = JSON.stringify;
  const parse = JSON.parse;

  const factories = new Map();
  const libraryPaths = [];
  const libraries = new Map();
  let sealed = false;

  hw.define = (path, factory, isLibrary) => {
    if (sealed) throw new Error("Modules can only be defined while the context is set up");
    factories.set(path, factory);
    if (isLibrary === true) libraryPaths.push(path);
  };

  function resolvePath(from, name) {
    if (!name.startsWith("./") && !name.startsWith("../")) return null;
    const parts = from.split("/");
    parts.pop();
    for (const part of name.split("/")) {
      if (part === "..") parts.pop();
      else if (part !== ".") parts.push(part);
    }
    return parts.join("/");
  }

  // The exports of `path`, instantiated once per `instances` (a call's cache).
  function load(path, instances) {
    const library = libraries.get(path);
    if (library !== undefined) return library;
    const existing = instances.get(path);
    if (existing !== undefined) return existing.exports;
    const factory = factories.get(path);
    if (factory === undefined) throw new Error(`Cannot find module '${path}'`);
    const module = { exports: {} };
    instances.set(path, module);
    const require = (name) => {
      const target = resolvePath(path, name);
      if (target === null || !factories.has(target)) throw new Error(`Cannot find module '${name}'`);
      return load(target, instances);
    };
    factory(require, module, module.exports);
    return module.exports;
  }

  function instantiate(path) {
    if (!factories.has(path) || path.startsWith("_deps/")) return null;
    return load(path, new Map());
  }

  // --- calls -------------------------------------------------------------
  const KIND_NAMES = { query: "Query", mutation: "Mutation", action: "Action" };

  function newCall(config) {
    return {
      kind: config.kind,
      nowMs: Math.floor(config.nowMs),
      startedMs: hw.realNow(),
      random: hw.makeRandom(config.seed[0], config.seed[1]),
      cryptoRandom: hw.makeCryptoRandom(config),
      env: freeze(Object.assign(objectCreate(null), config.env)),
      envRequired: config.envRequired === true,
      tableNumbers: Object.assign(objectCreate(null), config.tableNumbers),
      snapshotTs: config.snapshotTs,
      requestId: config.requestId,
      logLines: [],
      logOverflow: false,
      logLinesMax: config.logLinesMax,
      logLineBytesMax: config.logLineBytesMax,
      outbox: [],
      pending: new Map(),
      nextOpId: 1,
      streams: new Map(),
      idPools: new Map(),
      nextQueryId: 0,
      timers: new Map(),
      timerSeq: 0,
      userMs: 0,
      runningSinceMs: null,
      settled: false,
      result: null,
      error: null,
    };
  }

  // --- user time --------------------------------------------------------
  // Measured here, on V8's clock, so the time the host spends between
  // evaluations (answering syscalls, passing messages) is not the call's. An
  // evaluation that runs user code counts from its start to its end, then —
  // after the host has taken its reply, which V8 sends before running
  // microtasks — from the first microtask (queued first, so it runs first) to
  // the end of the last. Date.now() counts whole milliseconds: summing the
  // ticks crossed by many short spans is still an unbiased measure of their total.
  function userCodeRuns(call, run) {
    call.runningSinceMs = hw.realNow();
    (async () => {
      await undefined;
      if (call.runningSinceMs === null) call.runningSinceMs = hw.realNow();
    })();
    hw.afterMicrotasks(() => userCodeStopped(call));
    try {
      return run();
    } finally {
      userCodeStopped(call);
    }
  }

  function userCodeStopped(call) {
    if (call.runningSinceMs === null) return;
    call.userMs += hw.realNow() - call.runningSinceMs;
    call.runningSinceMs = null;
  }

  const describeError = hw.describeError;

  function fail(call, code, message) {
    call.settled = true;
    call.error = { code, message, data: null, frames: [] };
  }

  function functionKind(fn) {
    const kinds = [];
    if (fn.isQuery === true) kinds.push("query");
    if (fn.isMutation === true) kinds.push("mutation");
    if (fn.isAction === true) kinds.push("action");
    return kinds.length === 1 ? kinds[0] : null;
  }

  function invoke(call, config) {
    const exports = instantiate(config.module);
    const fn = exports === null ? undefined : exports[config.export];
    const found = (typeof fn === "function" || typeof fn === "object") && fn !== null ? functionKind(fn) : null;
    // The host checked the kind against the analysis; these guard a module that
    // changed under it (texts: crates/isolate/src/environment/udf/mod.rs).
    if (exports === null) {
      return fail(call, "FunctionNotFound",
        `Couldn't find JavaScript module '${config.module}'. Did you forget to run \`npx convex dev\`?`);
    }
    if (fn === undefined) {
      return fail(call, "FunctionNotFound", `Couldn't find ${stringify(config.export)} in module ${stringify(config.module)}.`);
    }
    if (found === null) {
      return fail(call, "FunctionNotFound", `Function ${stringify(`${config.module}:${config.export}`)} is neither a query or mutation. ` +
        "Did you forget to wrap it with `query` or `mutation`?");
    }
    if (found !== config.kind) {
      const where = `${config.module}:${config.export}`;
      return fail(call, "WrongFunctionKind",
        `Trying to execute ${where} as ${KIND_NAMES[config.kind]}, but it is defined as ${KIND_NAMES[found]}.`);
    }
    let promise;
    if (found === "query") promise = fn.invokeQuery(config.args);
    else if (found === "mutation") promise = fn.invokeMutation(config.args);
    else promise = fn.invokeAction(config.requestId, config.args);
    Promise.resolve(promise).then(
      (value) => { call.settled = true; call.result = typeof value === "string" ? value : "null"; },
      (e) => { call.settled = true; call.error = describeError(e, "UncaughtError"); },
    );
  }

  // What other entry points (http.js) build their calls from.
  hw.callParts = { newCall, userCodeRuns, describeError, instantiate };

  hw.start = (configJson) => {
    const config = parse(configJson);
    const call = newCall(config);
    S.call = call;
    hw.resetConsole();
    userCodeRuns(call, () => {
      try {
        invoke(call, config);
      } catch (e) {
        call.settled = true;
        call.error = describeError(e, "UncaughtError");
      }
    });
  };

  function unawaitedWarning(call) {
    const ops = call.outbox.filter((op) => op[0] !== 0).map((op) => op[1]);
    if (ops.length === 0) return;
    hw.pushLog("WARN", `The function returned before ${ops.length} operation(s) finished ` +
      `(${ops.join(", ")}); they were not run. Await every call to ctx.db and the like.`);
  }

  // The reply that ends a call also resets the context for the next one.
  // A small result rides in the reply ("result": one evaluation fewer per
  // call); a larger one (up to the return value limit and beyond) is not
  // copied into it: the host takes it as it is with __hw.takeResult().
  const INLINE_RESULT_CHARS_MAX = 65536;
  let finishedResult = null;
  function finish(call) {
    const done = { error: call.error, logLines: call.logLines };
    const result = call.result === undefined ? null : call.result;
    if (result === null || result.length <= INLINE_RESULT_CHARS_MAX) {
      done.result = result;
      finishedResult = null;
    } else {
      finishedResult = result;
    }
    return stringify({ done, userMs: call.userMs, reset: hw.reset() });
  }

  hw.takeResult = () => {
    const result = finishedResult;
    finishedResult = null;
    return result;
  };

  // Every reply carries the call's user time so far (ms).
  hw.poll = () => {
    const call = S.call;
    userCodeStopped(call);
    if (call.settled) {
      // Buffered inserts (syscalls.js) are run before the call ends; other
      // unawaited ops are not (the warning below).
      const buffered = call.error === null ? call.outbox.filter((op) => op[1] === hw.BUFFERED_INSERT) : [];
      if (buffered.length > 0) {
        call.outbox = call.outbox.filter((op) => op[1] !== hw.BUFFERED_INSERT);
        return stringify({ ops: buffered, userMs: call.userMs });
      }
      unawaitedWarning(call);
      return finish(call);
    }
    if (call.outbox.length > 0) {
      const ops = call.outbox;
      call.outbox = [];
      return stringify({ ops, userMs: call.userMs });
    }
    // Waiting: for the earliest timer, or (wait: null) for ops the host runs in the background.
    if (call.timers.size > 0 || call.pending.size > 0) {
      let due = Infinity;
      call.timers.forEach((t) => { if (t.due < due) due = t.due; });
      const wait = due === Infinity ? null : Math.max(0, due - hw.realNow());
      return stringify({ wait, userMs: call.userMs });
    }
    fail(call, "NeverResolves", "Returned promise will never resolve");
    return finish(call);
  };

  hw.resume = (results) => {
    const call = S.call;
    userCodeRuns(call, () => hw.settle(results));
  };

  hw.fireTimer = () => {
    const call = S.call;
    let id = null, timer = null;
    call.timers.forEach((t, k) => { if (timer === null || t.due < timer.due) { id = k; timer = t; } });
    if (timer === null) return;
    if (timer.repeat > 0) timer.due = hw.realNow() + timer.repeat;
    else call.timers.delete(id);
    userCodeRuns(call, () => timer.fn(...timer.args));
  };

  // --- analysis ----------------------------------------------------------
  function analyzeExports(exports) {
    const out = { functions: [], httpRoutes: null, schema: null, authConfig: null, crons: null };
    for (const name of Object.keys(exports)) {
      const value = exports[name];
      if (value === null || (typeof value !== "object" && typeof value !== "function")) continue;
      const kind = functionKind(value);
      if (kind !== null) {
        if (value.isPublic === true && value.isInternal === true) continue;
        const visibility = value.isPublic === true ? "public" : value.isInternal === true ? "internal" : null;
        out.functions.push({ name, kind, visibility, args: value.exportArgs(), returns: value.exportReturns() });
      } else if (value.isHttp === true) {
        out.functions.push({ name, kind: "httpAction", visibility: "public", args: null, returns: null });
      }
    }
    // Default exports with a meaning of their own: the http router (http.js),
    // the cron table (crons.js), the schema (schema.js, from defineSchema).
    const main = exports.default;
    if (main !== null && typeof main === "object") {
      if (main.isRouter === true) {
        out.httpRoutes = main.getRoutes().map((r) => ({ path: r[0], method: r[1] }));
      } else if (main.isCrons === true) {
        out.crons = main.export();
      } else if (typeof main.export === "function" && typeof main.tables === "object") {
        out.schema = main.export();
      }
    }
    return out;
  }

  hw.analyze = (configJson) => {
    const config = parse(configJson);
    const call = newCall(config);
    S.call = call;
    try {
      const exports = instantiate(config.module);
      const out = analyzeExports(exports);
      if (config.module === "auth.config.js") out.authConfig = stringify(exports.default ?? null);
      call.result = stringify(out);
    } catch (e) {
      call.error = describeError(e, "UncaughtError");
    }
    call.settled = true;
  };

  hw.seal = () => {
    const shared = new Map();
    for (const path of libraryPaths) load(path, shared);
    const namespaces = [];
    shared.forEach((module, path) => {
      const ns = module.exports;
      for (const key of Object.keys(ns)) {
        const value = ns[key];
        if (value !== null && (typeof value === "object" || typeof value === "function")) freeze(value);
      }
      freeze(ns);
      libraries.set(path, ns);
      namespaces.push(ns);
    });
    sealed = true;
    const guard = hw.makeGuard(namespaces);
    delete hw.S;
    delete hw.makeGuard;
    hw.reset = () => {
      S.call = null;
      return guard.restore() ? "ok" : "broken";
    };
    freeze(hw);
  };

  hw.modulePaths = () => stringify(Array.from(factories.keys()));
  hw.logs = () => stringify(S.call === null ? [] : S.call.logLines);
})(globalThis.__hw);
