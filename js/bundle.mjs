// Bundle a Convex functions folder exactly as the Convex CLI (npm convex) does.
//
// Reads one JSON request on stdin:
//   {"appRoot": "<dir>", "functionsDir": "<dir>",
//    "isolate": ["messages.ts", ...], "node": ["actions/send.ts", ...],
//    "schema": "schema.ts" | null, "authConfig": "auth.config.ts" | null,
//    "nodePaths": ["<headwater>/js/node_modules"],
//    "nodeExternal": ["stripe", ...]}  (convex.json's external packages the app has)
// and prints one JSON answer on stdout:
//   {"ok": true, "modules": [{"path", "source", "sourceMap", "environment"}], "warnings": [...],
//    "inputs": [<absolute path of every source file read, packages left out>],
//    "externalImports": [<names of nodeExternal packages the node modules import>]}
//   {"ok": false, "errors": [{"text", "file", "line", "column", "lineText"}]}
//
// The esbuild options, plugins and runs are the CLI's (bundler/index.js and
// bundler/debugBundle.js of npm convex): ESM with code splitting, shared code
// in `_deps/[hash].js` chunks (`_deps/node/` for "use node" files, built for
// platform node), the schema bundled on its own and the auth config without
// splitting; the working folder is the app root, so source maps name files
// like `../convex/messages.ts`. One addition: packages the app does not have
// resolve from Headwater's own node_modules (`nodePaths`); their machine path
// is then rewritten to `node_modules/...` in the comments and source maps.
// The node run leaves the packages in `nodeExternal` as imports, as the CLI's
// external plugin does (bundler/external.js), and reports those it met.

import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

// The esbuild the pinned convex package depends on (the CLI bundles with it:
// another version prints other bytes), else the one beside this script.
const esbuild = loadEsbuild();

function loadEsbuild() {
  const require = createRequire(import.meta.url);
  try {
    return createRequire(require.resolve("convex/package.json"))("esbuild");
  } catch {
    return require("esbuild");
  }
}

// The CLI's stand-ins for modules a Convex runtime has no use for.
const asyncHooksShim = {
  name: "convex-async-hooks-shim",
  setup(build) {
    build.onResolve({ filter: /^(node:)?async_hooks$/ }, (args) => ({
      path: args.path,
      namespace: "async-hooks-shim",
    }));
    build.onLoad({ filter: /.*/, namespace: "async-hooks-shim" }, () => ({
      contents: `
            export const AsyncLocalStorage = globalThis.AsyncLocalStorage;
            export const AsyncResource = globalThis.AsyncResource;
            export default { AsyncLocalStorage, AsyncResource };
          `,
      loader: "js",
    }));
  },
};

const serverOnlyPlugin = {
  name: "convex-server-only",
  setup(build) {
    build.onResolve({ filter: /^server-only$/ }, (args) => ({
      path: args.path,
      namespace: "server-only-stub",
    }));
    build.onLoad({ filter: /.*/, namespace: "server-only-stub" }, () => ({
      contents: "",
      loader: "js",
    }));
  },
};

const wasmPlugin = {
  name: "convex-wasm",
  setup(build) {
    build.onResolve({ filter: /\.wasm$/ }, (args) => {
      if (args.namespace === "wasm-stub") return { path: args.path, namespace: "wasm-binary" };
      if (args.resolveDir === "") return undefined;
      return {
        path: path.isAbsolute(args.path) ? args.path : path.join(args.resolveDir, args.path),
        namespace: "wasm-stub",
      };
    });
    build.onLoad({ filter: /.*/, namespace: "wasm-stub" }, async (args) => ({
      contents: `import wasm from ${JSON.stringify(args.path)}
          export default new WebAssembly.Module(wasm)`,
    }));
    build.onLoad({ filter: /.*/, namespace: "wasm-binary" }, async (args) => ({
      contents: await fs.promises.readFile(args.path),
      loader: "binary",
    }));
  },
};

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function describeMessage(message, functionsDir, appRoot) {
  const loc = message.location;
  const file = loc ? path.relative(functionsDir, path.resolve(appRoot, loc.file)) : null;
  return {
    text: message.text,
    file: file === null ? null : file.split(path.sep).join("/"),
    line: loc ? loc.line : null,
    column: loc ? loc.column + 1 : null, // esbuild counts columns from 0
    lineText: loc ? loc.lineText : null,
    notes: (message.notes || []).map((note) => note.text),
  };
}

// innerEsbuild of the CLI, with `nodePaths` as the only extra option.
// The CLI's "convex-node-externals" plugin: a bare import of an external package
// stays an import (its subpaths too); every other import is bundled.
function externalPlugin(names, met) {
  return {
    name: "convex-node-externals",
    setup(build) {
      build.onResolve({ namespace: "file", filter: /.*/ }, (args) => {
        if (args.path.startsWith(".")) return null;
        const parts = args.path.split("/");
        const name = args.path.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
        if (!names.includes(name)) return null;
        met.add(name);
        return { path: args.path, external: true };
      });
    },
  };
}

async function runEsbuild(request, { entryPoints, platform, chunksFolder, splitting, external }) {
  if (entryPoints.length === 0) return [];
  const functionsDir = path.resolve(request.functionsDir);
  const result = await esbuild.build({
    entryPoints: entryPoints.map((p) => path.join(functionsDir, p)),
    absWorkingDir: request.appRoot,
    bundle: true,
    platform,
    format: "esm",
    target: "esnext",
    jsx: "automatic",
    outdir: "out",
    outbase: functionsDir,
    conditions: ["convex", "module"],
    plugins: platform === "browser"
      ? [asyncHooksShim, serverOnlyPlugin, wasmPlugin]
      : [serverOnlyPlugin, ...(external ? [external] : []), wasmPlugin],
    write: false,
    sourcemap: true,
    sourcesContent: false,
    splitting,
    chunkNames: path.join(chunksFolder, "[hash]"),
    treeShaking: true,
    minifySyntax: true,
    minifyIdentifiers: true,
    minifyWhitespace: false,
    keepNames: true,
    define: { "process.env.NODE_ENV": '"production"' },
    metafile: true,
    logLevel: "silent",
    nodePaths: request.nodePaths,
  });
  const outdir = path.join(request.appRoot, "out");
  const environment = platform === "node" ? "node" : "isolate";
  const maps = new Map();
  const modules = [];
  for (const file of result.outputFiles) {
    const rel = path.relative(outdir, file.path).split(path.sep).join("/");
    if (rel.endsWith(".map")) maps.set(rel, file.text);
    else modules.push({ path: rel, source: file.text, environment });
  }
  for (const module of modules) module.sourceMap = maps.get(module.path + ".map") ?? null;
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !p.includes(":") && !p.split(/[\\/]/).includes("node_modules"))
    .map((p) => path.resolve(request.appRoot, p));
  return { modules, warnings: result.warnings, inputs };
}

// Paths of Headwater's own packages, as esbuild writes them relative to the app
// root, shortened to the `node_modules/...` the app's own packages would show.
// Only those strings change, so every other byte stays esbuild's.
function hideMachinePaths(modules, request) {
  const roots = request.nodePaths
    .map((dir) => path.resolve(dir))
    .filter((dir) => path.relative(request.appRoot, dir).startsWith(".."));
  const appModules = path.join(request.appRoot, "node_modules");
  for (const root of roots) {
    const rel = path.relative(request.appRoot, root).split(path.sep).join("/");
    const comment = new RegExp(`^// ${escapeRegExp(rel)}/`, "gm");
    for (const module of modules) {
      module.source = module.source.replace(comment, "// node_modules/");
      if (module.sourceMap === null) continue;
      const outDir = path.join(request.appRoot, "out", path.dirname(module.path));
      const map = JSON.parse(module.sourceMap);
      for (const source of map.sources) {
        const absolute = path.resolve(outDir, source);
        if (!absolute.startsWith(root + path.sep)) continue;
        const shown = path.relative(outDir, path.join(appModules, path.relative(root, absolute)));
        module.sourceMap = module.sourceMap.replace(
          JSON.stringify(source), JSON.stringify(shown.split(path.sep).join("/")));
      }
    }
  }
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

async function main() {
  const request = JSON.parse(await readStdin());
  request.appRoot = path.resolve(request.appRoot);
  const functionsDir = path.resolve(request.functionsDir);
  let runs;
  const externalImports = new Set();
  const external = externalPlugin(request.nodeExternal || [], externalImports);
  try {
    runs = await Promise.all([
      runEsbuild(request, {
        entryPoints: request.schema ? [request.schema] : [],
        platform: "browser", chunksFolder: "_deps", splitting: true,
      }),
      runEsbuild(request, {
        entryPoints: request.isolate, platform: "browser", chunksFolder: "_deps", splitting: true,
      }),
      runEsbuild(request, {
        entryPoints: request.node, platform: "node", chunksFolder: "_deps/node", splitting: true,
        external,
      }),
      runEsbuild(request, {
        entryPoints: request.authConfig ? [request.authConfig] : [],
        platform: "browser", chunksFolder: "_deps", splitting: false,
      }),
    ]);
  } catch (e) {
    if (Array.isArray(e.errors)) {
      const errors = e.errors.map((m) => describeMessage(m, functionsDir, request.appRoot));
      process.stdout.write(JSON.stringify({ ok: false, errors }));
      return;
    }
    throw e;
  }
  const modules = [];
  const warnings = [];
  const inputs = new Set();
  for (const [i, run] of runs.entries()) {
    if (!run.modules) continue;
    run.inputs.forEach((p) => inputs.add(p));
    // Like the CLI, the schema is the first module of its own run.
    modules.push(...(i === 0 ? run.modules.slice(0, 1) : run.modules));
    warnings.push(...run.warnings.map((m) => describeMessage(m, functionsDir, request.appRoot)));
  }
  hideMachinePaths(modules, request);
  process.stdout.write(JSON.stringify({
    ok: true, modules, warnings, inputs: [...inputs].sort(), externalImports: [...externalImports].sort(),
  }));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
