// Bundle the modules of a Convex functions folder for Headwater's V8 runtime.
//
// Reads one JSON request on stdin:
//   {"functionsDir": "<dir>", "entryPoints": ["messages.ts", "admin/users.ts", ...],
//    "nodePaths": ["<dir>/node_modules"]}
// and prints one JSON answer on stdout:
//   {"ok": true, "modules": [{"path": "messages.js", "source": "...", "sourceMap": "..."}]}
//   {"ok": false, "errors": [{"text", "file", "line", "column", "lineText"}]}
//
// Each module becomes one self-contained IIFE script (the convex npm package
// inlined) that assigns its export object to `__hwModule`; the runtime wraps it
// in a factory so a fresh instance can be made for every call.

import * as esbuild from "esbuild";
import path from "node:path";

const GLOBAL_NAME = "__hwModule";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function describeMessage(message, functionsDir) {
  const loc = message.location;
  return {
    text: message.text,
    file: loc ? path.relative(functionsDir, path.resolve(loc.file)) : null,
    line: loc ? loc.line : null,
    column: loc ? loc.column : null,
    lineText: loc ? loc.lineText : null,
  };
}

async function main() {
  const request = JSON.parse(await readStdin());
  const functionsDir = path.resolve(request.functionsDir);
  const entryPoints = request.entryPoints.map((p) => path.join(functionsDir, p));
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
