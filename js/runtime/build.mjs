// Bundle the runtime's Web classes (web_polyfills.mjs) into one script for V8.
// Run by `make setup`; writes udf/js/gen/web_polyfills.js (not in git).
import * as esbuild from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
await esbuild.build({
  entryPoints: [join(here, "web_polyfills.mjs")],
  outfile: join(here, "..", "..", "udf", "js", "gen", "web_polyfills.js"),
  bundle: true,
  format: "iife",
  target: "es2022",
  platform: "neutral",
  mainFields: ["module", "main"],
  minify: true,
  legalComments: "none",
  // whatwg-url loads every legacy multi-byte encoding for URLs of non-UTF-8
  // pages; a server function's URLs are UTF-8.
  alias: { "@exodus/bytes/encoding.js": join(here, "empty.mjs") },
  logLevel: "warning",
});
