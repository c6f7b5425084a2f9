// Headwater function runtime, part 4: fetch() in actions.
//
// The host makes the HTTP request (udf/fetch_client.py) through three async ops
// of our own (Convex's are internal ops of its runtime, not syscalls):
//   headwater/fetch      {url, method, headers: [[name, value]...], body: base64 | null}
//                        -> {status, statusText, headers, url, bodyId}  (after the head;
//                           a small body of known length comes along as `body`)
//   headwater/fetchBody  {bodyId} -> {chunk: base64} | {done: true}     (the body, in parts)
//   headwater/cancel     {id}: stop the host's work on an op (fire and forget)
// Redirects are followed here, as Convex's runtime does (so `redirect: "manual"`
// and "error" behave as in a browser); an aborted signal stops the request or
// the body being read.
(function (hw) {
  "use strict";
  const { Request, URL, ReadableStream } = globalThis;
  const DOMException = hw.DOMException;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const REQUEST_BODY_HEADERS = ["content-encoding", "content-language", "content-location", "content-type"];
  const REDIRECT_STATUSES = [301, 302, 303, 307, 308];
  const REDIRECTS_MAX = 20;

  function base64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }

  function unbase64(text) {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  function abortError() {
    return new DOMException("The signal has been aborted", "AbortError");
  }

  // An op the signal can stop: rejects with AbortError and tells the host to stop.
  function abortable(op, args, signal) {
    if (signal.aborted) return Promise.reject(abortError());
    const { id, promise } = hw.startOp(op, stringify(args));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        hw.cancelOp(id);
        reject(abortError());
      };
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (text) => { signal.removeEventListener("abort", onAbort); resolve(parse(text)); },
        (e) => { signal.removeEventListener("abort", onAbort); reject(e); },
      );
    });
  }

  function responseBody(bodyId, signal) {
    return new ReadableStream({
      type: "bytes",
      async pull(controller) {
        const part = await abortable("headwater/fetchBody", { bodyId }, signal);
        if (part.done) controller.close();
        else controller.enqueue(unbase64(part.chunk));
      },
      cancel() {
        hw.startOp("headwater/fetchBody", stringify({ bodyId, cancel: true })).promise.catch(() => {});
      },
    });
  }

  async function fetchOnce(request) {
    const state = hw.requestBody(request);
    let body = null;
    if (state !== null) body = base64(await hw.readRequestBody(request));
    const headers = [];
    request.headers.forEach((value, name) => headers.push([name, value]));
    const head = await abortable("headwater/fetch", { url: request.url, method: request.method, headers, body },
      request.signal);
    const nullBody = request.method === "HEAD" || [101, 103, 204, 205, 304].includes(head.status);
    return {
      status: head.status,
      init: { status: head.status, statusText: head.statusText, headers: head.headers, url: head.url },
      body: nullBody ? null : head.body !== undefined ? unbase64(head.body) : responseBody(head.bodyId, request.signal),
      bodyId: head.bodyId,
    };
  }

  function sameOrigin(a, b) {
    return a.origin === b.origin;
  }

  async function fetch(resource, options = undefined) {
    hw.requireAction("fetch()");
    const init = options ?? {};
    let request = new Request(resource, init);
    const mode = request.redirect;
    let redirects = 0;
    // A stream body cannot be sent twice: keep it only while no redirect needs it again.
    const streamed = init.body instanceof ReadableStream;
    let buffered = null;
    if (!streamed && hw.requestBody(request) !== null && mode === "follow") {
      buffered = await hw.readRequestBody(request.clone());
    }
    for (;;) {
      const answer = await fetchOnce(request);
      const location = answer.init.headers.find(([name]) => name === "location");
      if (!REDIRECT_STATUSES.includes(answer.status) || mode === "manual" || location === undefined) {
        return hw.makeResponse(answer.body, { ...answer.init, redirected: redirects > 0 });
      }
      if (answer.body instanceof ReadableStream) await answer.body.cancel();
      if (mode === "error") throw new TypeError("fetch attempted redirect");
      if (++redirects > REDIRECTS_MAX) throw new TypeError("fetch too many redirects");
      const url = new URL(location[1], request.url);
      const headers = new globalThis.Headers(request.headers);
      let method = request.method;
      let body = buffered;
      if (((answer.status === 301 || answer.status === 302) && method === "POST") ||
        (answer.status === 303 && method !== "GET" && method !== "HEAD")) {
        method = "GET";
        body = null;
        for (const name of REQUEST_BODY_HEADERS) headers.delete(name);
      } else if (streamed && hw.requestBody(request) !== null) {
        throw new TypeError("fetch cannot redirect with streamed body");
      }
      if (!sameOrigin(new URL(request.url), url)) headers.delete("authorization");
      request = new Request(url.href, { method, headers, body, signal: request.signal, redirect: mode });
    }
  }

  Object.defineProperty(globalThis, "fetch", { value: fetch, writable: true, enumerable: false, configurable: true });
})(globalThis.__hw);
