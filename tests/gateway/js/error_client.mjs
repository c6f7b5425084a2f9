// Calls functions through the official npm ConvexClient (WebSocket sync) and prints
// what each call threw, as the app sees it.
//
//   node error_client.mjs <deployment url> <js dir with node_modules> <calls JSON>
//
// <calls JSON> is [[name, "query"|"mutation"|"action", "module:function", args], ...].
// Prints one JSON object {name: {message, data, isConvexError} | {ok: value}}.
import { createRequire } from "node:module";

const [url, jsDir, callsJson] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexClient } = require("convex/browser");
const { ConvexError } = require("convex/values");
const { makeFunctionReference } = require("convex/server");

const client = new ConvexClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
const out = {};
for (const [name, kind, path, args] of JSON.parse(callsJson)) {
  try {
    out[name] = { ok: await client[kind](makeFunctionReference(path), args) };
  } catch (error) {
    out[name] = {
      message: String(error.message),
      data: error.data === undefined ? null : error.data,
      isConvexError: error instanceof ConvexError,
    };
  }
}
await client.close();
process.stdout.write(JSON.stringify(out));
