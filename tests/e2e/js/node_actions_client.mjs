// The official npm HTTP client calls "use node" actions of a `headwater serve`.
//
//   node node_actions_client.mjs <deployment url> <js dir with node_modules>
//
// Prints one JSON object: what each call returned or the error it raised.
import { createRequire } from "node:module";

const [url, jsDir] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexHttpClient } = require("convex/browser");
const { anyApi } = require("convex/server");

const http = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
const caught = async (promise) => {
  try {
    return { value: await promise };
  } catch (error) {
    return { message: String(error.message), data: error.data ?? null };
  }
};

const out = {
  sha256: await http.action(anyApi.crypto.sha256, { text: "hi" }),
  greet: await http.action(anyApi.crypto.greet, { name: "ada" }),
  viaV8: await http.action(anyApi.notes.digestViaNode, { text: "hi" }),
  roundTrip: await http.action(anyApi.crypto.roundTrip, { body: "from npm" }),
  convexError: await caught(http.action(anyApi.crypto.failsWithData, {})),
  exits: await caught(http.action(anyApi.crypto.exits, {})),
  after: await http.action(anyApi.crypto.sha256, { text: "hi" }),
};
process.stdout.write(JSON.stringify(out) + "\n");
