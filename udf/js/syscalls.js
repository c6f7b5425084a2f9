// Headwater function runtime, part 5: the `Convex` global the npm package calls.
//
// mini-racer lets V8 reach Python only asynchronously, so:
// - asyncSyscall queues [id, op, argsJson] in the call's outbox and returns a
//   promise; the host reads the outbox once the microtask queue is drained,
//   runs the ops in order and resolves them (see calls.js).
// - the four synchronous ops are answered here, from data the host passed at
//   call start:
//   1.0/queryStream    assigns the query id here; the query JSON rides along
//                      with the first 1.0/queryStreamNext for that id (as an
//                      extra `query` field), where the host opens the stream.
//                      Every 1.0/queryStreamNext the host sees asks for a batch:
//                      the host answers the next document plus those after it,
//                      up to the query's limit or a batch size, and the rest are
//                      served here — one round trip per batch, not per document.
//   1.0/queryCleanup   bookkeeping here; a started stream is reported to the
//                      host as a fire-and-forget 1.0/queryCleanup in the next
//                      batch (the host also drops every stream at call end).
//   1.0/db/normalizeId decodes the id here against the table-number map.
//   1.0/getSnapshotTs  the snapshot ts the host passed.
// - 1.0/insert in a mutation: the host answers an insert with the id and, for
//   a table that exists, a block of fresh ids for the next inserts into it
//   (engine Transaction.reserve_ids). While the block lasts, an insert takes
//   its id from it, resolves at once and rides in the outbox as a
//   fire-and-forget BUFFERED_INSERT: no round trip per insert. The outbox is
//   run in order, so a later read sees the write; the call's end ships what
//   is left (calls.js). A buffered insert the host refuses ends the run and
//   the host runs the mutation again without buffering (udf/database_syscalls.py).
(function (hw) {
  "use strict";
  const S = hw.S;
  const stringify = JSON.stringify;
  const DONE_JSON = '{"value":null,"done":true}';
  const BUFFERED_INSERT = "headwater/insertBuffered";
  hw.BUFFERED_INSERT = BUFFERED_INSERT;

  function requireCall(op) {
    const call = S.call;
    if (call === null) throw new Error(`Syscall ${op} is not available outside a function call`);
    return call;
  }

  function parseArgs(op, argsJson) {
    if (typeof op !== "string" || typeof argsJson !== "string") {
      throw new TypeError("Convex syscalls take an operation name and a JSON string");
    }
    try {
      return JSON.parse(argsJson);
    } catch (e) {
      throw new Error(`Syscall ${op} received invalid JSON arguments: ${e.message}`);
    }
  }

  const SYNC_OPS = {
    "1.0/queryStream"(call, args) {
      const queryId = call.nextQueryId++;
      call.streams.set(queryId, { query: args.query, started: false, buffer: [], exhausted: false });
      return { queryId };
    },
    "1.0/queryCleanup"(call, args) {
      const stream = call.streams.get(args.queryId);
      if (stream === undefined) return false;
      call.streams.delete(args.queryId);
      if (stream.started) call.outbox.push([0, "1.0/queryCleanup", stringify({ queryId: args.queryId })]);
      return true;
    },
    "1.0/db/normalizeId"(call, args) {
      const number = call.tableNumbers[args.table];
      if (typeof number !== "number" || typeof args.idString !== "string") return { id: null };
      return { id: hw.idTableNumber(args.idString) === number ? args.idString : null };
    },
    "1.0/getSnapshotTs"(call) {
      if (call.snapshotTs === null) throw new Error("getSnapshotTs() can only be called from a query or mutation.");
      return hw.int64Json(call.snapshotTs);
    },
  };

  function syscall(op, argsJson) {
    if (arguments.length !== 2) throw new TypeError("Convex.syscall takes exactly 2 arguments");
    const args = parseArgs(op, argsJson);
    const call = requireCall(op);
    const handler = Object.hasOwn(SYNC_OPS, op) ? SYNC_OPS[op] : undefined;
    if (handler === undefined) throw new Error(`Unknown operation ${op}`);
    return stringify(handler(call, args));
  }

  // Only the ops answered in part here are parsed here; the host parses the
  // others (and refuses invalid JSON with the same words).
  function asyncSyscall(op, argsJson) {
    if (typeof op !== "string" || typeof argsJson !== "string") {
      return Promise.reject(new TypeError("Convex syscalls take an operation name and a JSON string"));
    }
    const call = S.call;
    if (call === null) return Promise.reject(new Error(`Syscall ${op} is not available outside a function call`));
    let unpack = null;
    if (op === "1.0/insert" && call.kind === "mutation" && argsJson.endsWith("}")) {
      let table;
      try {
        table = JSON.parse(argsJson).table;
      } catch {
        table = undefined; // the host refuses it, in its words
      }
      if (typeof table === "string") {
        const ids = call.idPools.get(table);
        if (ids !== undefined && ids.length > 0) {
          const id = ids.pop();
          // The id goes last: JSON's last duplicate key wins, so it is the one the host reads.
          call.outbox.push([0, BUFFERED_INSERT, `${argsJson.slice(0, -1)},"id":${stringify(id)}}`]);
          return Promise.resolve(stringify({ _id: id }));
        }
        unpack = (text) => {
          const answer = JSON.parse(text);
          if (Array.isArray(answer.ids)) {
            const pool = call.idPools.get(table);
            if (pool === undefined) call.idPools.set(table, answer.ids);
            else for (const id of answer.ids) pool.push(id);
          }
          return stringify({ _id: answer._id });
        };
      }
    } else if (op === "1.0/queryStreamNext") {
      let args;
      try {
        args = parseArgs(op, argsJson);
      } catch (e) {
        return Promise.reject(e);
      }
      const stream = call.streams.get(args.queryId);
      if (stream !== undefined) {
        // Documents the host sent ahead are served from here, without a round trip.
        if (stream.buffer.length > 0) return Promise.resolve(stringify(stream.buffer.shift()));
        if (stream.exhausted) return Promise.resolve(DONE_JSON);
        if (!stream.started) {
          stream.started = true;
          args.query = stream.query;
        }
        args.batch = true;
        argsJson = stringify(args);
        unpack = (text) => {
          const answer = JSON.parse(text);
          if (Array.isArray(answer.batch)) {
            for (const value of answer.batch) stream.buffer.push({ value, done: false });
            stream.exhausted = answer.batchDone === true;
          }
          return stringify({ value: answer.value, done: answer.done });
        };
      }
    }
    const promise = hw.startOp(op, argsJson).promise;
    return unpack === null ? promise : promise.then(unpack);
  }

  // An async op for the host; its id lets the runtime cancel it (fetch.js).
  // The host may answer later than the batch it came in (an op it runs in the
  // background, such as a fetch): the promise stays pending until then.
  hw.startOp = (op, argsJson) => {
    const call = S.call;
    if (call === null) throw new Error(`Syscall ${op} is not available outside a function call`);
    const id = call.nextOpId++;
    call.outbox.push([id, op, argsJson]);
    const promise = new Promise((resolve, reject) => call.pending.set(id, { resolve, reject }));
    return { id, promise };
  };

  // Forget an op's answer and tell the host to stop working on it.
  hw.cancelOp = (id) => {
    const call = S.call;
    if (call === null || !call.pending.delete(id)) return;
    call.outbox.push([0, "headwater/cancel", stringify({ id })]);
  };

  // Settle the promises of a batch, in request order. Each result is
  // [id, 1, resultJson] or [id, 0, message, dataJson | null].
  hw.settle = (results) => {
    const call = S.call;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      const waiter = call.pending.get(r[0]);
      if (waiter === undefined) continue;
      call.pending.delete(r[0]);
      if (r[1] === 1) {
        waiter.resolve(r[2]);
      } else {
        const error = new Error(r[2]);
        if (r[3] !== null && r[3] !== undefined) error.data = JSON.parse(r[3]);
        waiter.reject(error);
      }
    }
  };

  // Bytes as base64 (hw.btoa/atob over Latin-1 strings), in slices so no argument
  // list grows with the file.
  function bytesToBase64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return hw.btoa(binary);
  }

  function base64ToBytes(text) {
    const binary = hw.atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  // ctx.storage.store/get in actions: the Blob read or built here, the bytes
  // through 1.0/storageStore and 1.0/storageGet.
  const JS_OPS = {
    async "storage/storeBlob"(args) {
      const blob = args.blob;
      if (typeof Blob === "undefined" || !(blob instanceof Blob)) {
        throw new Error(
          "store() expects a Blob. If you are trying to store a Request, `await request.blob()` will give you the correct input.",
        );
      }
      const bytes = new Uint8Array(await blob.arrayBuffer());
      const request = {
        requestId: args.requestId,
        version: args.version,
        blob: bytesToBase64(bytes),
        contentType: blob.type,
        sha256: args.options?.sha256,
      };
      return JSON.parse(await asyncSyscall("1.0/storageStore", stringify(request)));
    },
    async "storage/getBlob"(args) {
      const request = { requestId: args.requestId, version: args.version, storageId: args.storageId };
      const result = JSON.parse(await asyncSyscall("1.0/storageGet", stringify(request)));
      if (result === null) return null;
      return new Blob([base64ToBytes(result.blob)], { type: result.contentType ?? "" });
    },
  };

  // The runtime's own ops (function-runtime §3.5): storage's here, others registered by
  // other parts (http.js).
  const jsSyscalls = Object.assign(Object.create(null), JS_OPS);
  hw.jsSyscalls = jsSyscalls;
  function jsSyscall(op, args) {
    const handler = typeof op === "string" ? jsSyscalls[op] : undefined;
    if (handler === undefined) throw new Error(`Convex.jsSyscall ${op} is not supported by this runtime yet`);
    return handler(args);
  }

  const Convex = Object.freeze({ syscall, asyncSyscall, jsSyscall });
  Object.defineProperty(globalThis, "Convex", { value: Convex, writable: false, enumerable: false, configurable: false });
})(globalThis.__hw);
