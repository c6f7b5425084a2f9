// Checks a push answer against the official CLI's own zod schemas (npm convex 1.48).
// Usage: node push_shapes.mjs <js dir>; stdin: {"kind": ..., "value": ...}; prints {"ok", "error"?}.
import path from "node:path";
import { pathToFileURL } from "node:url";

const lib = path.join(process.argv[2], "node_modules/convex/dist/esm/cli/lib/deployApi");
const load = (file) => import(pathToFileURL(path.join(lib, file)).href);
const { startPushResponse, schemaStatus, evaluatePushResponse } = await load("startPush.js");
const { finishPushDiff } = await load("finishPush.js");
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { kind, value } = JSON.parse(input);
const schema = {
  startPush: startPushResponse,
  finishPush: finishPushDiff,
  schemaStatus,
  evaluatePush: evaluatePushResponse,
}[kind];
const parsed = schema.safeParse(value);
console.log(JSON.stringify(parsed.success ? { ok: true } : { ok: false, error: parsed.error.message }));
