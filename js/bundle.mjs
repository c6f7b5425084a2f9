// Bundle the modules of a Convex functions folder for Headwater's V8 runtime.
//
// Reads one JSON request on stdin:
//   {"functionsDir": "<dir>", "entryPoints": ["messages.ts", "admin/users.ts", ...],
//    "nodePaths": ["<dir>/node_modules"]}
// and prints one JSON answer on stdout:
//   {"ok": true, "modules": [{"path": "messages.js", "source": "...", "sourceMap": "..."}]}
//   {"ok": false, "errors": [{"text", "file", "line", "column", "lineText"}]}
//
// Each module becomes one IIFE script that assigns its export object to
// `__hwModule`; the runtime wraps it in a factory so a fresh instance can be
// made for every call. Imports of `convex`, `convex/server` and
// `convex/values` stay `require` calls: they resolve, inside V8, to one extra
// module, `_deps/convex.js`, built here from this folder's pinned convex
// package and loaded once per context (so a call does not pay for
// re-evaluating the whole npm package).

import * as esbuild from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const GLOBAL_NAME = "__hwModule";
const LIBRARY_ENTRY = "headwater:convex-library";
const LIBRARY_NAMESPACE = "headwater-library";
const LIBRARY_OUT = "_deps/convex";
const SHARED = /^convex(\/server|\/values)?$/;
const JS_DIR = path.dirname(fileURLToPath(import.meta.url));

// The library module re-exports the convex package; user modules `require` it.
const libraryPlugin = {
  name: "headwater-convex-library",
  setup(build) {
    build.onResolve({ filter: /^headwater:convex-library$/ }, (args) => ({
      path: args.path,
      namespace: LIBRARY_NAMESPACE,
    }));
    build.onLoad({ filter: /.*/, namespace: LIBRARY_NAMESPACE }, () => ({
      contents:
        'export * as server from "convex/server";\n' +
        'export * as values from "convex/values";\n' +
        'export * as root from "convex";\n',
      resolveDir: JS_DIR,
      loader: "js",
    }));
    build.onResolve({ filter: SHARED }, (args) =>
      args.namespace === LIBRARY_NAMESPACE ? undefined : { path: args.path, external: true },
    );
  },
};

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function describeMessage(message, functionsDir) {
  const loc = message.location;
  return {
    text: message.text,
    file: loc ? path.relative(functionsDir, path.resolve(functionsDir, loc.file)).split(path.sep).join("/") : null,
    line: loc ? loc.line : null,
    column: loc ? loc.column + 1 : null, // esbuild counts columns from 0
    lineText: loc ? loc.lineText : null,
  };
}

async function main() {
  const request = JSON.parse(await readStdin());
  const functionsDir = path.resolve(request.functionsDir);
  const entryPoints = request.entryPoints.map((p) => path.join(functionsDir, p));
  entryPoints.push({ in: LIBRARY_ENTRY, out: LIBRARY_OUT });
  let result;
  try {
    result = await esbuild.build({
      entryPoints,
      absWorkingDir: functionsDir,
      bundle: true,
      platform: "browser",
      format: "iife",
      globalName: GLOBAL_NAME,
      target: "esnext",
      jsx: "automatic",
      conditions: ["convex", "module"],
      nodePaths: request.nodePaths,
      outdir: path.join(functionsDir, "out"),
      outbase: functionsDir,
      write: false,
      sourcemap: "external",
      sourcesContent: false,
      logLevel: "silent",
      plugins: [libraryPlugin],
    });
  } catch (e) {
    if (Array.isArray(e.errors)) {
      const errors = e.errors.map((m) => describeMessage(m, functionsDir));
      process.stdout.write(JSON.stringify({ ok: false, errors }));
      return;
    }
    throw e;
  }
  const outdir = path.join(functionsDir, "out");
  const sources = new Map();
  const maps = new Map();
  for (const file of result.outputFiles) {
    const rel = path.relative(outdir, file.path).split(path.sep).join("/");
    if (rel.endsWith(".map")) maps.set(rel.slice(0, -4), file.text);
    else sources.set(rel, file.text);
  }
  const modules = [];
  for (const [rel, source] of sources) {
    modules.push({ path: rel, source, sourceMap: maps.get(rel) ?? null });
  }
  const warnings = result.warnings.map((m) => describeMessage(m, functionsDir));
  process.stdout.write(JSON.stringify({ ok: true, modules, warnings }));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
