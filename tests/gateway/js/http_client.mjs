// Drives the official npm ConvexHttpClient against a running Headwater server.
//
//   node http_client.mjs <deployment url> <js dir with node_modules> <admin key> [user JWT]
//
// Prints one JSON object: what each call returned or threw, for the Python test to check.
import { createRequire } from "node:module";

const [url, jsDir, adminKey, userToken] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexHttpClient } = require("convex/browser");
const { anyApi } = require("convex/server");

const client = () => new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
const out = {};

async function record(name, fn) {
  try {
    const value = await fn();
    out[name] = { ok: typeof value === "bigint" ? `${value}n` : value };
  } catch (error) {
    out[name] = { error: String(error.message), data: error.data === undefined ? null : error.data };
  }
}

const c = client();
await record("send", () => c.mutation(anyApi.messages.send, { channel: "npm", body: "from npm" }));
await record("list", async () =>
  (await c.query(anyApi.messages.list, { channel: "npm" })).map((m) => m.body),
);
await record("shout", () => c.action(anyApi.actions.shout, { text: "hey" }));
await record("convexError", () => c.mutation(anyApi.messages.send, { channel: "npm" }));
await record("missing", () => c.query(anyApi.messages.nope, {}));
await record("internalAnonymous", () => c.mutation(anyApi.messages.clear, {}));
await record("consistent", async () =>
  (await c.consistentQuery(anyApi.messages.list, { channel: "npm" })).length,
);
await record("echo", async () => {
  const value = await c.query(anyApi.values.echo, {
    value: { n: 42n, bytes: new Uint8Array([1, 2, 255]).buffer, nan: NaN, neg: -0, s: "é" },
  });
  return {
    n: typeof value.n === "bigint" ? `${value.n}n` : value.n,
    bytes: Array.from(new Uint8Array(value.bytes)),
    nan: Number.isNaN(value.nan),
    negZero: Object.is(value.neg, -0),
    s: value.s,
  };
});

const admin = client();
admin.setAdminAuth(adminKey);
await record("internalAdmin", () => admin.mutation(anyApi.messages.clear, {}));
await record("functionAdmin", () => admin.function("messages:list", undefined, { channel: "npm" }));
const acting = client();
acting.setAdminAuth(adminKey, { issuer: "https://issuer.test", subject: "acted-user" });
await record("actingWhoami", () => acting.query(anyApi.auth.whoami, {}));
if (userToken) {
  const user = client();
  user.setAuth(userToken);
  await record("userWhoami", () => user.query(anyApi.auth.whoami, {}));
}
console.log(JSON.stringify(out));
