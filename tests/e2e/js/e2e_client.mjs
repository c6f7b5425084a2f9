// The official npm clients against a real `headwater serve`.
//
//   node e2e_client.mjs <deployment url> <js dir with node_modules>
//
// ConvexHttpClient calls a query, a mutation, an action, a ConvexError and an
// internal function; then ConvexClient A subscribes to messages:list while
// client B sends. After the first live update it prints {"step":"restart"} and
// waits for a line on stdin (the test restarts the server on the same port and
// data), sends again and checks that A, reconnected, sees both. One JSON line
// per step on stdout; exit 0 when everything was seen.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const [url, jsDir] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexClient, ConvexHttpClient } = require("convex/browser");
const { anyApi } = require("convex/server");

const STEP_TIMEOUT_MS = 20000;
const options = { skipConvexDeploymentUrlCheck: true, logger: false };
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function httpCalls() {
  const http = new ConvexHttpClient(url, options);
  const out = {};
  out.before = await http.query(anyApi.messages.list, {});
  out.count = await http.action(anyApi.messages.count, {});
  try {
    await http.mutation(anyApi.messages.send, { body: "" });
  } catch (error) {
    out.errorData = error.data ?? null;
  }
  try {
    await http.mutation(anyApi.messages.clear, {});
  } catch (error) {
    out.internal = String(error.message).includes("Could not find public function");
  }
  say({ step: "http", ...out });
}

let latest = null;
let waiter = null;
function waitFor(description, check) {
  if (latest !== null && check(latest)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${description}; last ${JSON.stringify(latest)}`)),
      STEP_TIMEOUT_MS,
    );
    waiter = { check, resolve: () => { clearTimeout(timer); waiter = null; resolve(); } };
  });
}

async function main() {
  await httpCalls();
  const a = new ConvexClient(url, options);
  const b = new ConvexClient(url, options);
  a.onUpdate(anyApi.messages.list, {}, (messages) => {
    latest = messages.map((m) => m.body);
    say({ step: "update", bodies: latest });
    if (waiter && waiter.check(latest)) waiter.resolve();
  });
  await waitFor("the initial empty list", (bodies) => same(bodies, []));
  const started = Date.now();
  await b.mutation(anyApi.messages.send, { body: "one" });
  await waitFor("A to see 'one'", (bodies) => same(bodies, ["one"]));
  say({ step: "live", ms: Date.now() - started });
  say({ step: "restart" });
  await stdinLines.next();
  await b.mutation(anyApi.messages.send, { body: "two" });
  await waitFor("A to see both after the restart", (bodies) => same(bodies, ["one", "two"]));
  say({ step: "done", hasEverConnected: a.connectionState().hasEverConnected });
  await Promise.all([a.close(), b.close()]);
}

main().then(
  () => process.exit(0),
  (error) => {
    say({ error: String(error && error.stack ? error.stack : error) });
    process.exit(1);
  },
);
