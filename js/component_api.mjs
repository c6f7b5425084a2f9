// Write `_generated/api.d.ts` and `api.js` of an app with components, as the Convex CLI does.
//
// Reads one JSON request on stdin:
//   {"functionsDir": "<dir>", "startPush": <a StartPushResponse: its "analysis" by definition path>}
// and prints one JSON answer on stdout:
//   {"ok": true, "apiDts": "<text>", "apiJs": "<text>"} | {"ok": false, "error": "<text>"}
//
// The text comes from the CLI's own templates (cli/codegen_templates/component_api.js
// of npm convex): `api`/`internal` typed from the app's modules, `components` typed
// from the analysis of each child component (its exported functions' args and returns).
// Only the glue is ours: the CLI's context (a file system and `crash`) and the root
// component directory it codegens for. The CLI formats the files with prettier
// afterwards; that changes layout only.

import { createRequire, register } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

// Packages the CLI bundle inlines resolve to stand-ins (see cli_standins.mjs).
register("./cli_standins.mjs", import.meta.url);

const require = createRequire(import.meta.url);
const convexDir = path.dirname(require.resolve("convex/package.json"));
const load = (rel) => import(pathToFileURL(path.join(convexDir, "dist", "esm", rel)).href);

class CodegenFailed extends Error {}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const { nodeFs } = await load("bundler/fs.js");
  const templates = await load("cli/codegen_templates/component_api.js");
  const ctx = {
    fs: nodeFs,
    crash: async ({ printedMessage }) => {
      throw new CodegenFailed(printedMessage ?? "codegen failed");
    },
    registerCleanup: () => "",
    removeCleanup: () => null,
  };
  const functionsDir = path.resolve(request.functionsDir);
  const root = { isRoot: true, path: functionsDir, definitionPath: path.join(functionsDir, "convex.config.ts") };
  try {
    const apiDts = await templates.componentApiDTS(ctx, request.startPush, root, root, new Map(), {
      staticApi: false,
      useComponentApiImports: false,
    });
    const apiJs = templates.componentApiJs();
    process.stdout.write(JSON.stringify({ ok: true, apiDts, apiJs }));
  } catch (error) {
    if (!(error instanceof CodegenFailed)) throw error;
    process.stdout.write(JSON.stringify({ ok: false, error: error.message }));
  }
}

await main();
