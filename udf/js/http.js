// Headwater function runtime, part 8: HTTP actions (the default export of convex/http.js).
//
// The host starts an HTTP action with __hw.startHttp(configJson), config =
// {path, method, request: {url, method, headerPairs, hasBody}, ...the usual
// call config}. The call then runs as an action:
//   1. the router's lookup(path, method); no route: the call's result is
//      {"notFound": true} and nothing else runs;
//   2. runRequest(requestJson, path): the npm router builds the Request with
//      the jsSyscall requestFromConvexJson (its body a ReadableStream that
//      pulls the request body from the host: op hw/http/read), runs the
//      handler and hands the Response to the jsSyscall convexJsonFromResponse;
//   3. the response head goes to the host (op hw/http/head), then the body,
//      chunk by chunk as the stream yields them (op hw/http/write; the host
//      answers {"closed": true} past the body limit or once the client is gone,
//      and reading stops; gone, request.signal aborts too);
//   4. the result is {"route": "GET /path"}.
// A throw before the head is out is the call's error (the host answers 500);
// after it, the host ends the body and logs the error.
// Bytes cross as base64 in the ops' JSON.
(function (hw) {
  "use strict";
  const S = hw.S;
  const parts = hw.callParts;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const fromCharCode = String.fromCharCode;
  const CHUNK_CHARS = 0x8000;
  const WRITE_SLICE_BYTES = 256 * 1024;

  function hostOp(call, op, args) {
    const id = call.nextOpId++;
    call.outbox.push([id, op, stringify(args)]);
    return new Promise((resolve, reject) => call.pending.set(id, { resolve, reject })).then(parse);
  }

  function toBase64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += CHUNK_CHARS) {
      text += fromCharCode.apply(null, bytes.subarray(i, i + CHUNK_CHARS));
    }
    return hw.btoa(text);
  }

  function fromBase64(text) {
    const binary = hw.atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function requestBody(call) {
    return new globalThis.ReadableStream({
      async pull(controller) {
        const answer = await hostOp(call, "hw/http/read", {});
        if (answer.done === true) controller.close();
        else controller.enqueue(fromBase64(answer.data));
      },
    });
  }

  // The runtime's halves of the npm router's runRequest (function-runtime §2.4).
  hw.jsSyscalls.requestFromConvexJson = ({ convexJson }) => {
    const call = S.call;
    if (call === null || call.http === undefined) throw new Error("requestFromConvexJson is only for HTTP actions");
    // request.signal aborts once the host reports the client gone (on a write).
    const abort = new globalThis.AbortController();
    call.http.abort = abort;
    const init = { method: convexJson.method, headers: convexJson.headerPairs, signal: abort.signal };
    if (convexJson.hasBody === true) {
      init.body = requestBody(call);
      init.duplex = "half";
    }
    return new globalThis.Request(convexJson.url, init);
  };

  hw.jsSyscalls.convexJsonFromResponse = ({ response }) => {
    const call = S.call;
    if (!(response instanceof globalThis.Response)) throw new Error("HTTP actions must return a Response");
    if (call !== null && call.http !== undefined) call.http.response = response;
    const headerPairs = [];
    response.headers.forEach((value, name) => { headerPairs.push([name, value]); });
    return { status: response.status, statusText: response.statusText, headerPairs, streamId: null };
  };

  // Resolves with NOT_YET after a few microtask turns: a chunk the stream already
  // holds (a Response made from a string or bytes) comes sooner.
  const NOT_YET = {};
  async function microtaskTurns(n) {
    for (let i = 0; i < n; i++) await undefined;
    return NOT_YET;
  }

  // Send the body's chunks, in slices: the base64 text of a slice is the only copy
  // on the V8 heap. Stops when the host says the client is gone.
  async function writeChunk(call, reader, value) {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError("A Response body stream must yield Uint8Array chunks");
    }
    for (let at = 0; at < value.length; at += WRITE_SLICE_BYTES) {
      const slice = value.subarray(at, at + WRITE_SLICE_BYTES);
      const answer = await hostOp(call, "hw/http/write", { data: toBase64(slice) });
      if (answer.closed === true) {
        if (answer.gone === true && call.http.abort !== null) call.http.abort.abort();
        await reader.cancel();
        return false;
      }
    }
    return true;
  }

  // The head goes out with the body's first chunk when the stream has it at once
  // (one round trip for a plain response), else alone, as soon as it is known.
  async function sendResponse(call, head, route, response) {
    const body = response === null ? null : response.body;
    const reader = body === null || body === undefined ? null : body.getReader();
    const headArgs = { status: head.status, headerPairs: head.headerPairs, route };
    let pending = reader === null ? null : reader.read();
    if (pending !== null) {
      const first = await Promise.race([pending, microtaskTurns(4)]);
      if (first !== NOT_YET) {
        pending = null;
        if (first.done) {
          headArgs.end = true;
        } else if (first.value instanceof Uint8Array && first.value.length <= WRITE_SLICE_BYTES) {
          headArgs.data = toBase64(first.value);
          // A body held whole (a string, bytes) ends at once: the host can then
          // answer after the call, without a round trip for the head.
          pending = reader.read();
          const second = await Promise.race([pending, microtaskTurns(4)]);
          if (second !== NOT_YET && second.done) headArgs.end = true;
        } else {
          pending = Promise.resolve(first);
        }
        if (headArgs.end === true || headArgs.data !== undefined) {
          await hostOp(call, "hw/http/head", headArgs);
          if (headArgs.end === true) return;
          if (pending === null) pending = reader.read();
        }
      }
    }
    if (headArgs.data === undefined && headArgs.end !== true) await hostOp(call, "hw/http/head", headArgs);
    if (reader === null) return;
    for (;;) {
      const { done, value } = await pending;
      if (done) return;
      if (!(await writeChunk(call, reader, value))) return;
      pending = reader.read();
    }
  }

  async function runHttp(call, config) {
    const exports = parts.instantiate("http.js");
    const router = exports === null ? undefined : exports.default;
    if (router === null || typeof router !== "object" || router.isRouter !== true) {
      throw new Error("The default export of `convex/http.js` is not a Router.");
    }
    const match = router.lookup(config.path, config.method);
    if (match === null || match === undefined) return { notFound: true };
    const route = `${match[1]} ${match[2]}`;
    const text = await router.runRequest(stringify(config.request), config.path);
    const head = parse(text);
    // A router of its own may answer without convexJsonFromResponse: no body then.
    await sendResponse(call, head, route, call.http.response);
    return { route };
  }

  hw.startHttp = (configJson) => {
    const config = parse(configJson);
    const call = parts.newCall(config);
    call.http = { response: null, abort: null };
    S.call = call;
    hw.resetConsole();
    parts.userCodeRuns(call, () => {
      runHttp(call, config).then(
        (value) => { call.settled = true; call.result = stringify(value); },
        (e) => { call.settled = true; call.error = parts.describeError(e, "UncaughtError"); },
      );
    });
  };
})(globalThis.__hw);
