// The official npm clients against tests/e2e/components_app on `headwater serve`.
//
//   node components_client.mjs <deployment url> <js dir with node_modules>
//
// ConvexClient subscribes to counters:count (a query that reads the sharded-counter
// component's tables) while ConvexHttpClient increments it: every value shows up
// live. Then the rate limiter's ConvexError (thrown inside the component) reaches
// the client with its data, and an aggregate query follows a mutation. One JSON
// line per step on stdout; exit 0 when everything was seen.
import { createRequire } from "node:module";

const [url, jsDir] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexClient, ConvexHttpClient } = require("convex/browser");
const { anyApi } = require("convex/server");

const STEP_TIMEOUT_MS = 20000;
const options = { skipConvexDeploymentUrlCheck: true, logger: false };
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function waitUntil(description, check, latest) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() - started > STEP_TIMEOUT_MS) {
        return reject(new Error(`timed out waiting for ${description}; last ${JSON.stringify(latest())}`));
      }
      setTimeout(poll, 20);
    };
    poll();
  });
}

async function liveCounter(http) {
  const live = new ConvexClient(url, options);
  const seen = [];
  const unsubscribe = live.onUpdate(anyApi.counters.count, { name: "live" }, (value) => {
    if (seen[seen.length - 1] !== value) seen.push(value);
  });
  await waitUntil("the first value", () => seen.length > 0, () => seen);
  for (let i = 1; i <= 3; i++) {
    await http.mutation(anyApi.counters.inc, { name: "live" });
    await waitUntil(`count ${i}`, () => seen[seen.length - 1] === i, () => seen);
  }
  unsubscribe();
  await live.close();
  say({ step: "counter", seen });
}

async function rateLimit(http) {
  const oks = [];
  for (let i = 0; i < 3; i++) oks.push((await http.mutation(anyApi.limits.send, { key: "erin" })).ok);
  let errorData = null;
  try {
    await http.mutation(anyApi.limits.sendOrThrow, { key: "erin" });
  } catch (error) {
    errorData = error.data ?? null;
  }
  say({ step: "limit", oks, errorData });
}

async function aggregate(http) {
  const before = (await http.query(anyApi.scores.stats, {})).count;
  await http.mutation(anyApi.scores.add, { player: "js", points: 3 });
  const count = (await http.query(anyApi.scores.stats, {})).count;
  say({ step: "aggregate", before, count });
}

async function main() {
  const http = new ConvexHttpClient(url, options);
  await liveCounter(http);
  await rateLimit(http);
  await aggregate(http);
  say({ step: "done" });
}

main().then(
  () => process.exit(0),
  (error) => {
    say({ step: "error", error: String(error?.stack ?? error) });
    process.exit(1);
  },
);
