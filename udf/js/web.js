// Headwater function runtime, part 3: Request, Response, DOMException and the
// body reading they share; the other Web classes (streams, URL, Headers, Blob,
// File, FormData, AbortController) come from npm packages bundled into
// gen/web_polyfills.js, evaluated just before this file. Error texts follow
// Convex's runtime where it words them, the Fetch standard elsewhere.
(function (hw) {
  "use strict";
  const { ReadableStream, Blob, FormData, URLSearchParams, URL, Headers, AbortSignal } = globalThis;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // --- DOMException: V8 alone has none; AbortError and TimeoutError need it.
  const CODES = {
    IndexSizeError: 1, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
    InvalidAccessError: 15, TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20,
    TimeoutError: 23, DataCloneError: 25,
  };
  class DOMException extends Error {
    #name;
    constructor(message = "", name = "Error") {
      super(String(message));
      this.#name = String(name);
    }
    get name() { return this.#name; }
    get code() { return CODES[this.#name] ?? 0; }
  }
  for (const [name, code] of Object.entries(CODES)) {
    const constant = name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase().replace("_ERROR", "_ERR");
    Object.defineProperty(DOMException, constant, { value: code, enumerable: true });
  }
  hw.DOMException = DOMException;

  // --- bodies -------------------------------------------------------------
  // A body is kept as given while it can be (bytes, a Blob), so text() of a
  // string body never goes through a stream; `.body` makes the stream on demand.
  function bytesOf(view) {
    if (view instanceof ArrayBuffer) return new Uint8Array(view.slice(0));
    return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
  }

  function quoteName(s) {
    return String(s).replace(/\r/g, "%0D").replace(/\n/g, "%0A").replace(/"/g, "%22");
  }

  // FormData as multipart/form-data, a Blob of its parts (files stay Blobs).
  function encodeFormData(form) {
    let boundary = "----formdata-headwater-";
    for (let i = 0; i < 24; i++) boundary += Math.floor(Math.random() * 16).toString(16);
    const parts = [];
    for (const [name, value] of form) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quoteName(name)}"`;
      if (typeof value === "string") {
        parts.push(`${head}\r\n\r\n${value.replace(/\r(?!\n)|(?<!\r)\n/g, "\r\n")}\r\n`);
      } else {
        head += `; filename="${quoteName(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}`;
        parts.push(`${head}\r\n\r\n`, value, "\r\n");
      }
    }
    parts.push(`--${boundary}--\r\n`);
    return new Blob(parts, { type: `multipart/form-data; boundary=${boundary}` });
  }

  // [source, content type]: source is null, a Uint8Array, a Blob or a ReadableStream.
  function extractBody(body) {
    if (body === null || body === undefined) return [null, null];
    if (typeof body === "string") return [encoder.encode(body), "text/plain;charset=UTF-8"];
    if (body instanceof URLSearchParams) {
      return [encoder.encode(body.toString()), "application/x-www-form-urlencoded;charset=UTF-8"];
    }
    if (body instanceof FormData) {
      const blob = encodeFormData(body);
      return [blob, blob.type];
    }
    if (body instanceof Blob) return [body, body.type || null];
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return [bytesOf(body), null];
    if (body instanceof ReadableStream) return [body, null];
    return [encoder.encode(String(body)), "text/plain;charset=UTF-8"];
  }

  function streamOf(source) {
    if (source instanceof ReadableStream) return source;
    if (source instanceof Blob) return source.stream();
    return new ReadableStream({
      type: "bytes",
      start(controller) {
        if (source.byteLength > 0) controller.enqueue(source.slice());
        controller.close();
      },
    });
  }

  async function readAll(stream) {
    if (stream.locked) throw new TypeError("ReadableStream is locked.");
    const reader = stream.getReader();
    const chunks = [];
    let length = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!(value instanceof Uint8Array)) {
        throw new TypeError("Body chunks must be Uint8Array (a stream of other values cannot be read as a body)");
      }
      chunks.push(value);
      length += value.byteLength;
    }
    const out = new Uint8Array(length);
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.byteLength; }
    return out;
  }

  // Body.formData(): urlencoded or multipart/form-data bytes as a FormData.
  function contentTypeParam(contentType, name) {
    const m = new RegExp(`;\\s*${name}=(?:"([^"]*)"|([^;\\s]*))`, "i").exec(contentType);
    return m === null ? null : (m[1] ?? m[2]);
  }

  function indexOf(bytes, needle, from) {
    outer: for (let i = from; i <= bytes.length - needle.length; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  }

  hw.parseFormData = (bytes, contentType) => {
    const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
    const form = new FormData();
    if (type === "application/x-www-form-urlencoded") {
      for (const [k, v] of new URLSearchParams(decoder.decode(bytes))) form.append(k, v);
      return form;
    }
    const boundary = type === "multipart/form-data" ? contentTypeParam(contentType, "boundary") : null;
    if (boundary === null || boundary === "") {
      throw new TypeError("Failed to execute 'formData': the body is not multipart/form-data or urlencoded");
    }
    const delimiter = encoder.encode(`--${boundary}`);
    let at = indexOf(bytes, delimiter, 0);
    if (at < 0) throw new TypeError("Failed to execute 'formData': malformed multipart body");
    for (;;) {
      at += delimiter.length;
      if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return form; // "--": the last one
      const headEnd = indexOf(bytes, encoder.encode("\r\n\r\n"), at);
      const next = indexOf(bytes, encoder.encode(`\r\n--${boundary}`), at);
      if (headEnd < 0 || next < 0 || headEnd > next) {
        throw new TypeError("Failed to execute 'formData': malformed multipart body");
      }
      const head = decoder.decode(bytes.subarray(at, headEnd));
      const content = bytes.subarray(headEnd + 4, next);
      const disposition = /content-disposition:([^\r\n]*)/i.exec(head)?.[1] ?? "";
      const name = contentTypeParam(disposition, "name");
      const filename = contentTypeParam(disposition, "filename");
      const partType = /content-type:\s*([^\r\n]*)/i.exec(head)?.[1]?.trim() ?? "";
      if (name !== null) {
        if (filename === null) form.append(name, decoder.decode(content));
        else form.append(name, new globalThis.File([content.slice()], filename, { type: partType }));
      }
      at = next + 2;
    }
  };

  const BODY = Symbol("body");
  class BodyState {
    constructor(source) {
      this.source = source;
      this.stream = null;
      this.used = false;
    }
  }

  function takeBody(self, className, method) {
    const state = self[BODY];
    if (state.used || (state.stream !== null && state.stream.locked)) {
      throw new TypeError(`Failed to execute '${method}' on '${className}': body stream already read`);
    }
    if (state.source !== null) state.used = true;
    return state;
  }

  async function consumeBytes(self, className, method) {
    const state = takeBody(self, className, method);
    if (state.stream !== null) return readAll(state.stream);
    const source = state.source;
    if (source === null) return new Uint8Array(0);
    if (source instanceof Uint8Array) return source;
    if (source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
    return readAll(source);
  }

  // The methods Request and Response share (the Fetch standard's Body mixin).
  function defineBody(cls, className) {
    const methods = {
      get body() {
        const state = this[BODY];
        if (state.source === null) return null;
        if (state.stream === null) state.stream = streamOf(state.source);
        return state.stream;
      },
      get bodyUsed() { return this[BODY].used; },
      async arrayBuffer() { return (await consumeBytes(this, className, "arrayBuffer")).slice().buffer; },
      async bytes() { return (await consumeBytes(this, className, "bytes")).slice(); },
      async text() { return decoder.decode(await consumeBytes(this, className, "text")); },
      async json() { return JSON.parse(decoder.decode(await consumeBytes(this, className, "json"))); },
      async blob() {
        const bytes = await consumeBytes(this, className, "blob");
        return new Blob([bytes], { type: this.headers.get("content-type") ?? "" });
      },
      async formData() {
        const bytes = await consumeBytes(this, className, "formData");
        return hw.parseFormData(bytes, this.headers.get("content-type"));
      },
    };
    for (const key of Object.getOwnPropertyNames(methods)) {
      const d = Object.getOwnPropertyDescriptor(methods, key);
      d.enumerable = false;
      Object.defineProperty(cls.prototype, key, d);
    }
  }

  function cloneBody(self, className) {
    const state = self[BODY];
    if (state.used) throw new TypeError(`Failed to execute 'clone' on '${className}': body stream already read`);
    if (state.source === null) return new BodyState(null);
    if (!(state.source instanceof ReadableStream) && state.stream === null) return new BodyState(state.source);
    const [a, b] = (state.stream ?? state.source).tee();
    state.source = a;
    state.stream = a;
    return new BodyState(b);
  }

  function headersOf(init) {
    return init instanceof Headers ? new Headers(init) : new Headers(init ?? []);
  }

  // --- Request --------------------------------------------------------------
  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];

  function validateURL(input) {
    const url = new URL(input);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(
        `Unsupported URL scheme -- http and https are supported (scheme was ${url.protocol.slice(0, -1)})`);
    }
    return url.href;
  }

  class Request {
    #url; #method; #headers; #signal; #redirect;
    constructor(input, init = {}) {
      if (input === undefined) throw new TypeError("Request URL is undefined");
      init = init ?? {};
      let inherited = null;
      if (input instanceof Request) {
        this.#url = input.url;
        this.#method = input.method;
        this.#headers = new Headers(input.headers);
        this.#signal = input.signal;
        this.#redirect = input.redirect;
        inherited = input;
      } else {
        this.#url = validateURL(input instanceof URL ? input.href : String(input));
        this.#method = "GET";
        this.#headers = new Headers();
        this.#signal = new AbortSignal();
        this.#redirect = "follow";
      }
      if (init.method !== undefined) {
        const method = String(init.method);
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method)) {
          throw new TypeError(`Failed to construct 'Request': '${method}' is not a valid HTTP method.`);
        }
        const upper = method.toUpperCase();
        if (upper === "CONNECT" || upper === "TRACE" || upper === "TRACK") {
          throw new TypeError(`Failed to construct 'Request': '${method}' HTTP method is unsupported.`);
        }
        this.#method = METHODS.includes(upper) ? upper : method;
      }
      if (init.headers !== undefined) this.#headers = headersOf(init.headers);
      if (init.signal !== undefined && init.signal !== null) this.#signal = init.signal;
      if (init.redirect !== undefined) {
        if (!["follow", "error", "manual"].includes(init.redirect)) {
          throw new TypeError(`Failed to construct 'Request': '${init.redirect}' is not a valid redirect mode.`);
        }
        this.#redirect = init.redirect;
      }
      if (init.body !== undefined && init.body !== null) {
        if (this.#method === "GET" || this.#method === "HEAD") {
          throw new TypeError("Failed to construct 'Request': Request with GET/HEAD method cannot have body.");
        }
        const [source, type] = extractBody(init.body);
        if (type !== null && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
        this[BODY] = new BodyState(source);
      } else if (inherited !== null) {
        const state = takeBody(inherited, "Request", "new Request()");
        this[BODY] = new BodyState(state.stream ?? state.source);
      } else {
        this[BODY] = new BodyState(null);
      }
    }
    get url() { return this.#url; }
    get method() { return this.#method; }
    get headers() { return this.#headers; }
    get signal() { return this.#signal; }
    get redirect() { return this.#redirect; }
    get [Symbol.toStringTag]() { return "Request"; }
    clone() {
      const copy = new Request(this.#url, { method: this.#method, headers: this.#headers, signal: this.#signal,
        redirect: this.#redirect });
      copy[BODY] = cloneBody(this, "Request");
      return copy;
    }
  }
  defineBody(Request, "Request");

  // --- Response -------------------------------------------------------------
  const REDIRECTS = [301, 302, 303, 307, 308];
  const INTERNAL = Symbol("internal");

  class Response {
    #status; #statusText; #headers; #type = "default"; #url = ""; #redirected = false;
    constructor(body = null, init = {}) {
      init = init ?? {};
      let status = init.status === undefined ? 200 : init.status;
      if (typeof status === "string") status = +status;
      if (init[INTERNAL] !== true && (typeof status !== "number" || !Number.isInteger(status) || status < 200 || status > 599)) {
        throw new RangeError("Failed to construct 'Response': The status provided is outside the range [200, 599].");
      }
      this.#status = status;
      this.#statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.#headers = headersOf(init.headers);
      if (body !== null && [101, 103, 204, 205, 304].includes(status)) {
        throw new TypeError("Failed to construct 'Response': Response with null body status cannot have body");
      }
      const [source, type] = extractBody(body);
      if (type !== null && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
      this[BODY] = new BodyState(source);
      if (init[INTERNAL] === true) {
        this.#url = init.url ?? "";
        this.#redirected = init.redirected === true;
        this.#type = init.type ?? "basic";
      }
    }
    static error() {
      return new Response(null, { status: 0, [INTERNAL]: true, type: "error" });
    }
    static redirect(url, status = 302) {
      if (!REDIRECTS.includes(status)) {
        throw new RangeError("Failed to execute 'redirect' on 'Response': Invalid status code");
      }
      const location = new URL(url instanceof URL ? url.href : String(url)).href;
      return new Response(null, { status, headers: { location } });
    }
    static json(data, init = {}) {
      let text;
      try {
        text = JSON.stringify(data);
      } catch {
        text = undefined;
      }
      if (text === undefined) {
        throw new TypeError("Failed to execute 'json' on 'Response': The data is not JSON serializable");
      }
      const response = new Response(text, init);
      response.headers.set("content-type", "application/json");
      return response;
    }
    get status() { return this.#status; }
    get ok() { return this.#status >= 200 && this.#status <= 299; }
    get statusText() { return this.#statusText; }
    get headers() { return this.#headers; }
    get type() { return this.#type; }
    get url() { return this.#url; }
    get redirected() { return this.#redirected; }
    get [Symbol.toStringTag]() { return "Response"; }
    clone() {
      const copy = new Response(null, { status: this.#status, statusText: this.#statusText, headers: this.#headers,
        [INTERNAL]: true, url: this.#url, redirected: this.#redirected, type: this.#type });
      copy[BODY] = cloneBody(this, "Response");
      return copy;
    }
    toJSON() { return {}; }
  }
  defineBody(Response, "Response");

  // A response made by the host (fetch): body is bytes, a Blob or a stream.
  hw.makeResponse = (body, init) => new Response(body, { ...init, [INTERNAL]: true });
  hw.requestBody = (request) => {
    const state = request[BODY];
    return state.source === null ? null : state;
  };
  hw.readRequestBody = (request) => consumeBytes(request, "Request", "fetch");

  for (const [name, value] of [["DOMException", DOMException], ["Request", Request], ["Response", Response]]) {
    Object.defineProperty(globalThis, name, { value, writable: true, enumerable: false, configurable: true });
  }
})(globalThis.__hw);
