// One Node.js worker of Headwater's node action pool: runs "use node" actions
// of one deployment, one call at a time, reused between calls.
//
//   node node_worker.mjs <deployment dir> <protocol fd>
//
// The deployment dir holds `modules/<path>` (the pushed ESM, with a package.json
// saying so) and `node_modules/` (the external packages). The protocol runs on
// the socket at <protocol fd>, never on stdout (user code may print anything
// there): frames of a 4-byte big-endian length and that many bytes of JSON.
//
//   host -> worker  {type: "analyze", id, modules: [path...], env}
//                   {type: "run", id, module, export, args, requestId, env,
//                    logLinesMax, logLineBytesMax}
//                   {type: "syscallResult", opId, ok, value | message, data}
//   worker -> host  {type: "ready"}
//                   {type: "syscall", opId, op, args}   (an async syscall of the call)
//                   {type: "done", id, result | error, logLines, heapUsedBytes,
//                    exiting: true when the worker stops after this answer}
//
// `Convex.asyncSyscall` of the convex package reaches the host as a "syscall"
// frame (runQuery, runMutation, runAction, scheduler, storage URLs, auth...);
// `Convex.jsSyscall` answers the two blob ops here with the storage URL ops and
// fetch, as Convex's own Node executor does (those two URL ops carry
// `blobTransfer: "store" | "get"`, so the host can refuse them when it has no URL). A process.exit or an error thrown
// outside the call's promise ends the call with an error, then the process:
// the host starts a fresh worker.

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { AsyncLocalStorage } from "node:async_hooks";
import { inspect } from "node:util";

const deploymentDir = path.resolve(process.argv[2]);
const protocolFd = Number(process.argv[3]);
const modulesDir = path.join(deploymentDir, "modules");
const MODULE_URL_PREFIX = "convex:/";
const FRAME_HEADER_BYTES = 4;
const exitProcess = process.exit.bind(process);
const baseEnv = {};
for (const name of ["PATH", "LANG", "TZ"]) {
  if (process.env[name] !== undefined) baseEnv[name] = process.env[name];
}

// --- protocol -------------------------------------------------------------
const socket = new net.Socket({ fd: protocolFd, readable: true, writable: true });
let inbox = Buffer.alloc(0);

function send(message) {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  socket.write(Buffer.concat([header, body]));
}

socket.on("data", (chunk) => {
  inbox = inbox.length === 0 ? chunk : Buffer.concat([inbox, chunk]);
  while (inbox.length >= FRAME_HEADER_BYTES) {
    const size = inbox.readUInt32BE(0);
    if (inbox.length < FRAME_HEADER_BYTES + size) break;
    const body = inbox.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + size);
    inbox = inbox.subarray(FRAME_HEADER_BYTES + size);
    receive(JSON.parse(body.toString("utf8")));
  }
});
socket.on("end", () => exitProcess(0));
socket.on("error", () => exitProcess(0));

// --- the call in flight -------------------------------------------------------
const currentCall = new AsyncLocalStorage();
let activeCall = null; // the one call this worker runs now (process-level errors end it)
const pendingOps = new Map();
let nextOpId = 1;

function callOf(op) {
  const call = currentCall.getStore() ?? activeCall;
  if (!call || call.finished) {
    throw new Error(`Convex syscall ${op} was made outside of a running Convex function.`);
  }
  if (call.analyzing) throw new Error("Cannot invoke syscall during module imports");
  return call;
}

function asyncSyscall(op, argsJson) {
  const call = callOf(op);
  const opId = nextOpId++;
  return new Promise((resolve, reject) => {
    pendingOps.set(opId, { resolve, reject, call });
    send({ type: "syscall", opId, op, args: argsJson });
  });
}

function settleOp(message) {
  const pending = pendingOps.get(message.opId);
  if (pending === undefined) return;
  pendingOps.delete(message.opId);
  if (pending.call.finished) return; // a dangling op of an earlier call: never settles
  if (message.ok) {
    pending.resolve(message.value);
    return;
  }
  const error = new Error(message.message);
  if (message.data !== null && message.data !== undefined) error.data = JSON.parse(message.data);
  pending.reject(error);
}

async function storeBlob(args) {
  const blob = args.blob;
  if (!(blob instanceof Blob)) {
    throw new Error(
      "store() expects a Blob. If you are trying to store a Request, `await request.blob()` will give you the correct input.",
    );
  }
  const url = JSON.parse(
    await asyncSyscall("1.0/storageGenerateUploadUrl", JSON.stringify({ version: args.version, blobTransfer: "store" })),
  );
  const headers = { "Content-Type": blob.type };
  if (args.options?.sha256 !== undefined) headers.Digest = `sha-256=${args.options.sha256}`;
  const response = await fetch(url, { method: "POST", body: blob, headers });
  if (!response.ok) throw new Error(`Error uploading file: ${await response.text()}`);
  return (await response.json()).storageId;
}

async function getBlob(args) {
  const url = JSON.parse(
    await asyncSyscall(
      "1.0/storageGetUrl",
      JSON.stringify({ storageId: args.storageId, version: args.version, blobTransfer: "get" }),
    ),
  );
  if (url === null) return null;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`Error fetching file: ${await response.text()}`);
  return await response.blob();
}

globalThis.Convex = Object.freeze({
  syscall(op, _argsJson) {
    throw new Error(`Unknown operation ${op}`);
  },
  asyncSyscall,
  jsSyscall(op, args) {
    callOf(op);
    if (op === "storage/storeBlob") return storeBlob(args);
    if (op === "storage/getBlob") return getBlob(args);
    throw new Error(`Unknown operation ${op}`);
  },
});

// --- console ------------------------------------------------------------------
const TRUNCATED = " (truncated due to length)";

function pushLog(level, args) {
  const call = currentCall.getStore() ?? activeCall;
  if (!call || call.finished) return;
  if (call.logLines.length >= call.logLinesMax) {
    if (!call.logOverflow) {
      call.logOverflow = true;
      call.logLines.push(`[ERROR] Log overflow (maximum ${call.logLinesMax}). Remaining log lines omitted.`);
    }
    return;
  }
  const text = args.map((a) => inspect(a, { maxStringLength: 32768, breakLength: Infinity })).join(" ");
  let line = `[${level}] ${text}`;
  if (Buffer.byteLength(line) > call.logLineBytesMax) {
    const cut = Math.max(0, call.logLineBytesMax - TRUNCATED.length);
    line = Buffer.from(line).subarray(0, cut).toString("utf8").replace(/\uFFFD$/, "") + TRUNCATED;
  }
  call.logLines.push(line);
}

const timers = new Map();
const userConsole = {
  log: (...a) => pushLog("LOG", a),
  info: (...a) => pushLog("INFO", a),
  warn: (...a) => pushLog("WARN", a),
  error: (...a) => pushLog("ERROR", a),
  debug: (...a) => pushLog("DEBUG", a),
  trace: (...a) => pushLog("LOG", [...a, new Error().stack.split("\n").slice(2).join("\n")]),
  assert: (ok, ...a) => { if (!ok) pushLog("ERROR", ["Assertion failed" + (a.length ? ":" : ""), ...a]); },
  time: (label = "default") => {
    if (timers.has(label)) pushLog("WARN", [`Timer '${label}' already exists`]);
    else timers.set(label, Date.now());
  },
  timeLog: (label = "default", ...a) => {
    if (!timers.has(label)) return pushLog("WARN", [`Timer '${label}' does not exist`]);
    pushLog("INFO", [`${label}: ${Date.now() - timers.get(label)}ms`, ...a]);
  },
  timeEnd: (label = "default") => {
    if (!timers.has(label)) return pushLog("WARN", [`Timer '${label}' does not exist`]);
    pushLog("INFO", [`${label}: ${Date.now() - timers.get(label)}ms`]);
    timers.delete(label);
  },
};
Object.defineProperty(globalThis, "console", { value: userConsole, writable: true, configurable: true });

// --- errors ---------------------------------------------------------------------
// Stack frames of the deployment's modules as the host maps them: `convex:/<path>:line:col`.
const moduleUrl = pathToFileURL(modulesDir).href + "/";
function hostStack(stack) {
  if (typeof stack !== "string") return "";
  return stack.split(moduleUrl).join(MODULE_URL_PREFIX).replace(/\?env=[0-9a-f]+/g, "");
}

function describeError(e) {
  if (e !== null && typeof e === "object" && typeof e.message === "string") {
    const name = typeof e.name === "string" && e.name ? e.name : "Error";
    const message = e.message ? `Uncaught ${name}: ${e.message}` : `Uncaught ${name}`;
    let data = null;
    const symbol = e.ConvexErrorSymbol;
    if (typeof symbol === "symbol" && e[symbol] === true && e.data !== undefined) {
      data = typeof e.data === "string" ? e.data : JSON.stringify(e.data);
    }
    return { code: "UncaughtError", message, data, stack: hostStack(e.stack) };
  }
  const text = typeof e === "string" ? e : inspect(e);
  return { code: "UncaughtError", message: `Uncaught ${text}`, data: null, stack: "" };
}

function finish(call, outcome) {
  if (call.finished) return;
  call.finished = true;
  if (activeCall === call) activeCall = null;
  send({
    type: "done",
    id: call.id,
    ...outcome,
    logLines: call.logLines,
    heapUsedBytes: process.memoryUsage().heapUsed,
  });
}

// Errors no call's promise catches end the call in flight (or, idle, the worker):
// the process may be in any state, so the host replaces it.
function fatal(error, code) {
  const call = activeCall;
  if (call) {
    const described = error instanceof Error ? describeError(error) : describeError(new Error(String(error)));
    finish(call, { error: { ...described, code }, exiting: true });
  }
  socket.end(() => exitProcess(1));
  setTimeout(() => exitProcess(1), 1000).unref();
}
process.on("uncaughtException", (e) => fatal(e, "UncaughtError"));
process.on("unhandledRejection", (e) => fatal(e, "UncaughtError"));
process.exit = (code) => {
  const shown = code === undefined ? "with no exit code" : `with exit code ${code}`;
  fatal(new Error(`process.exit() called ${shown}`), "ProcessExit");
  throw new Error("process.exit() was called");
};

// --- modules ----------------------------------------------------------------------
function environmentFor(env) {
  const names = Object.keys(env).sort();
  const hash = createHash("sha256").update(JSON.stringify(names.map((n) => [n, env[n]]))).digest("hex");
  process.env = { ...baseEnv, ...env };
  return hash.slice(0, 16);
}

async function importModule(modulePath, envHash) {
  const file = path.join(modulesDir, modulePath);
  // esbuild's ESM output of CommonJS packages calls `require`: resolve from the module.
  globalThis.require = createRequire(file);
  return await import(`${pathToFileURL(file).href}?env=${envHash}`);
}

function functionKind(value) {
  const has = (k) => Object.prototype.hasOwnProperty.call(value, k);
  if (has("isAction") && has("invokeAction")) return "action";
  if (has("isQuery") && has("invokeQuery")) return "query";
  if (has("isMutation") && has("invokeMutation")) return "mutation";
  if (has("isHttp") && (has("invokeHttpAction") || has("invokeHttpEndpoint"))) return "httpAction";
  return null;
}

async function analyze(message) {
  const envHash = environmentFor(message.env);
  const modules = {};
  for (const modulePath of message.modules) {
    let exports;
    try {
      exports = await importModule(modulePath, envHash);
    } catch (e) {
      const error = describeError(e);
      return { error: { ...error, message: `Failed to analyze ${modulePath}: ${error.message}` } };
    }
    const functions = [];
    for (const [name, value] of Object.entries(exports)) {
      if (value === null || (typeof value !== "object" && typeof value !== "function")) continue;
      const kind = functionKind(value);
      if (kind === null) continue;
      const isPublic = Object.prototype.hasOwnProperty.call(value, "isPublic");
      const isInternal = Object.prototype.hasOwnProperty.call(value, "isInternal");
      if (isPublic && isInternal) continue;
      const args = typeof value.exportArgs === "function" ? value.exportArgs() : null;
      const returns = typeof value.exportReturns === "function" ? value.exportReturns() : null;
      functions.push({
        name,
        kind,
        visibility: isPublic ? "public" : isInternal ? "internal" : null,
        args: typeof args === "string" ? args : null,
        returns: typeof returns === "string" ? returns : null,
      });
    }
    modules[modulePath] = functions;
  }
  return { result: JSON.stringify(modules) };
}

async function run(message) {
  const call = {
    id: message.id,
    finished: false,
    logLines: [],
    logOverflow: false,
    logLinesMax: message.logLinesMax,
    logLineBytesMax: message.logLineBytesMax,
  };
  activeCall = call;
  timers.clear();
  await currentCall.run(call, async () => {
    try {
      const exports = await importModule(message.module, environmentFor(message.env));
      const fn = exports[message.export];
      if (fn === undefined || fn === null || functionKind(fn) !== "action") {
        const where = `${message.module.replace(/\.js$/, "")}:${message.export}`;
        throw new Error(`Could not find a Node.js action for '${where}'.`);
      }
      const value = await fn.invokeAction(message.requestId, message.args);
      finish(call, { result: typeof value === "string" ? value : "null" });
    } catch (e) {
      finish(call, { error: describeError(e) });
    }
  });
}

async function receive(message) {
  if (message.type === "syscallResult") return settleOp(message);
  if (message.type === "run") return run(message);
  if (message.type === "analyze") {
    const call = {
      id: message.id, analyzing: true, finished: false,
      logLines: [], logOverflow: false, logLinesMax: 256, logLineBytesMax: 32768,
    };
    activeCall = call;
    const outcome = await currentCall.run(call, () => analyze(message));
    finish(call, outcome);
  }
}

send({ type: "ready" });
