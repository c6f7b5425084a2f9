// The Web classes of the function runtime, from maintained packages that
// follow the standards. esbuild bundles this file into one script the runtime
// evaluates before it seals the context (see udf/isolate.py); our own glue
// (Request, Response, fetch, DOMException) is in udf/js/web.js.
import {
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  ReadableByteStreamController,
  ReadableStream,
  ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest,
  ReadableStreamDefaultController,
  ReadableStreamDefaultReader,
  TransformStream,
  TransformStreamDefaultController,
  WritableStream,
  WritableStreamDefaultController,
  WritableStreamDefaultWriter,
} from "web-streams-polyfill";
import { URL as WhatwgURL, URLSearchParams } from "whatwg-url";
import { AbortController as PolyfillAbortController, AbortSignal } from "abortcontroller-polyfill/dist/cjs-ponyfill";
import { Headers } from "headers-polyfill";
// The Node build: its "browser" build only re-exports the browser's own classes.
import { Blob, File, FormData } from "../node_modules/formdata-node/lib/form-data.js";

// Convex words a URL that does not parse as "Invalid URL: '<url>'".
class URL extends WhatwgURL {
  constructor(url, base) {
    try {
      if (base === undefined) super(url);
      else super(url, base);
    } catch (e) {
      if (e instanceof TypeError) throw new TypeError(`Invalid URL: '${url}'`);
      throw e;
    }
  }
}

// A signal aborts once: a second abort() keeps the first reason and fires nothing.
class AbortController extends PolyfillAbortController {
  abort(reason) {
    if (!this.signal.aborted) super.abort(reason);
  }
}

const classes = {
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  ReadableByteStreamController,
  ReadableStream,
  ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest,
  ReadableStreamDefaultController,
  ReadableStreamDefaultReader,
  TransformStream,
  TransformStreamDefaultController,
  WritableStream,
  WritableStreamDefaultController,
  WritableStreamDefaultWriter,
  URL,
  URLSearchParams,
  AbortController,
  AbortSignal,
  Headers,
  Blob,
  File,
  FormData,
};
for (const name of Object.keys(classes)) {
  // As the Web defines its globals: writable, configurable, not enumerable.
  Object.defineProperty(globalThis, name, {
    value: classes[name],
    writable: true,
    enumerable: false,
    configurable: true,
  });
}
