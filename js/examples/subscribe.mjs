// A Node client subscribing to a Headwater query with the official `convex` package.
//
//   make run                                # in another terminal: the chat example
//   node js/examples/subscribe.mjs http://127.0.0.1:3210
//
// It joins as a user, creates #general, subscribes to its messages and sends
// one; every change anyone makes shows up here live. Ctrl-C to stop.
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";

const url = process.argv[2] ?? "http://127.0.0.1:3210";
const client = new ConvexClient(url, { skipConvexDeploymentUrlCheck: true });

const me = await client.mutation(anyApi.users.join, { name: "node-example" });
const channel = await client.mutation(anyApi.channels.create, { name: "general" });

client.onUpdate(anyApi.messages.list, { channel }, (messages) => {
  console.log(`#general now has ${messages.length} message(s):`);
  for (const m of messages) console.log(`  ${m.body} (${m.likes} likes)`);
});

await client.mutation(anyApi.messages.send, { channel, author: me, body: "hello from Node" });
