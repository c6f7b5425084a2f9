// The official npm ConvexClient subscribed to bank:ledger, through whatever URL it is
// given (in the test: a load balancer in front of several nodes). Prints the ledger's
// transfer keys as one JSON line on every update; the test ends it (at the latest it
// exits by itself after two minutes).
//
//   node cluster_subscriber.mjs <deployment url> <js dir with node_modules>
import { createRequire } from "node:module";

const [url, jsDir] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexClient } = require("convex/browser");
const { anyApi } = require("convex/server");

const client = new ConvexClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
client.onUpdate(anyApi.bank.ledger, {}, (rows) => {
  process.stdout.write(JSON.stringify(rows.map((row) => row[0])) + "\n");
});
setTimeout(() => process.exit(3), 120_000);
