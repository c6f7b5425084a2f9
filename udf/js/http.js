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
//      answers {"closed": true} once the client is gone, and reading stops);
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
    const init = { method: convexJson.method, headers: convexJson.headerPairs };
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

  async function streamBody(call, response) {
    const body = response.body;
    if (body === null || body === undefined) return;
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (!(value instanceof Uint8Array)) {
        throw new TypeError("A Response body stream must yield Uint8Array chunks");
      }
      // In slices: the base64 text of a slice is the only copy on the V8 heap.
      for (let at = 0; at < value.length; at += WRITE_SLICE_BYTES) {
        const slice = value.subarray(at, at + WRITE_SLICE_BYTES);
        const answer = await hostOp(call, "hw/http/write", { data: toBase64(slice) });
        if (answer.closed === true) {
          await reader.cancel();
          return;
        }
      }
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
    const response = call.http.response;
    await hostOp(call, "hw/http/head", {
      status: head.status,
      headerPairs: head.headerPairs,
      route,
    });
    // A router of its own may answer without convexJsonFromResponse: no body then.
    if (response !== null) await streamBody(call, response);
    return { route };
  }

  hw.startHttp = (configJson) => {
    const config = parse(configJson);
    const call = parts.newCall(config);
    call.http = { response: null };
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
