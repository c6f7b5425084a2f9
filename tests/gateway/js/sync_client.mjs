// Drives the official npm ConvexClient (WebSocket sync) against a running Headwater server.
//
//   node sync_client.mjs <deployment url> <js dir with node_modules>
//
// Client A subscribes to messages:list; client B sends messages. Prints one JSON
// line per step on stdout. After the first message it prints {"step":"restart"} and
// waits for one line on stdin (the test restarts the server on the same port and
// data folder), then sends a second message and checks A sees both. Exits 0 when
// everything was seen, 1 with {"error": ...} otherwise.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const [url, jsDir] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexClient } = require("convex/browser");
const { anyApi } = require("convex/server");

const STEP_TIMEOUT_MS = 20000;
const options = { skipConvexDeploymentUrlCheck: true, logger: false };
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const lines = createInterface({ input: process.stdin });
const stdinLines = lines[Symbol.asyncIterator]();

let latest = null;
let waiter = null;
function onList(messages) {
  latest = messages.map((m) => m.body);
  say({ step: "update", bodies: latest });
  if (waiter && waiter.check(latest)) waiter.resolve();
}

function waitFor(description, check) {
  if (latest !== null && check(latest)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${description}; last seen ${JSON.stringify(latest)}`)),
      STEP_TIMEOUT_MS,
    );
    waiter = { check, resolve: () => { clearTimeout(timer); waiter = null; resolve(); } };
  });
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function main() {
  const a = new ConvexClient(url, options);
  const b = new ConvexClient(url, options);
  a.onUpdate(anyApi.messages.list, {}, onList, (error) => say({ step: "queryError", error: String(error) }));
  await waitFor("the initial empty list", (bodies) => same(bodies, []));

  const id = await b.mutation(anyApi.messages.send, { body: "one" });
  say({ step: "sent", id });
  await waitFor("A to see 'one'", (bodies) => same(bodies, ["one"]));

  say({ step: "restart" });
  await stdinLines.next();

  const again = await b.mutation(anyApi.messages.send, { body: "two" });
  say({ step: "sent", id: again });
  await waitFor("A to see both messages after the restart", (bodies) => same(bodies, ["one", "two"]));
  const state = a.connectionState();
  say({ step: "done", hasEverConnected: state.hasEverConnected, retries: state.connectionRetries });
  await Promise.all([a.close(), b.close()]);
}

main().then(
  () => process.exit(0),
  (error) => {
    say({ error: String(error && error.stack ? error.stack : error) });
    process.exit(1);
  },
);
