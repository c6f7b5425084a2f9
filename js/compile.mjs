// Turn the ESM modules the Convex CLI pushes into scripts Headwater's V8 runtime loads.
//
// Reads one JSON request on stdin:
//   {"modules": [{"path": "messages.js", "source": "<ESM>", "sourceMap": "<json>" | null}]}
// and prints one JSON answer on stdout:
//   {"ok": true, "modules": [{"path", "code", "sourceMap"}]}
//   {"ok": false, "errors": [{"path", "text", "line", "column"}]}
//
// Each module becomes CommonJS (`require`, `module.exports`), which the
// runtime wraps in a factory so it can make a fresh instance per call (V8's
// own ES modules cannot be instantiated twice). The module's source map is
// inlined first, so esbuild composes it: the new map still points at the
// user's files (`../convex/messages.ts`), not at the pushed ESM.

import * as esbuild from "esbuild";

const MAP_COMMENT = /\/\/# sourceMappingURL=\S*\s*$/;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

async function compile(module) {
  let source = module.source.replace(MAP_COMMENT, "");
  if (module.sourceMap !== null) {
    const inline = Buffer.from(module.sourceMap, "utf8").toString("base64");
    source += `\n//# sourceMappingURL=data:application/json;base64,${inline}\n`;
  }
  const result = await esbuild.transform(source, {
    format: "cjs",
    loader: "js",
    target: "esnext",
    sourcemap: module.sourceMap === null ? false : "external",
    sourcefile: module.path,
    logLevel: "silent",
  });
  return { path: module.path, code: result.code, sourceMap: result.map || null };
}

async function main() {
  const request = JSON.parse(await readStdin());
  const settled = await Promise.allSettled(request.modules.map(compile));
  const errors = [];
  settled.forEach((s, i) => {
    if (s.status === "fulfilled") return;
    const path = request.modules[i].path;
    const messages = Array.isArray(s.reason.errors) ? s.reason.errors : [{ text: String(s.reason) }];
    for (const m of messages) {
      errors.push({
        path,
        text: m.text,
        line: m.location ? m.location.line : null,
        column: m.location ? m.location.column + 1 : null,
      });
    }
  });
  if (errors.length > 0) {
    process.stdout.write(JSON.stringify({ ok: false, errors }));
    return;
  }
  process.stdout.write(JSON.stringify({ ok: true, modules: settled.map((s) => s.value) }));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
