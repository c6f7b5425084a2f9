// The components benchmark: `n` additions to a one-shard counter in one mutation,
// through the sharded-counter component (a component mutation per addition), through
// the same code deployed as an app mutation (called the same way, ctx.runMutation),
// and with that code inlined.
import { ShardedCounter } from "@convex-dev/sharded-counter";
import { v } from "convex/values";
import { components, internal } from "./_generated/api";
import { internalMutation, type MutationCtx, mutation } from "./_generated/server";

const counter = new ShardedCounter(components.shardedCounter, { shards: { bench: 1 } });

export const viaComponent = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    for (let i = 0; i < n; i++) await counter.add(ctx, "bench", 1);
  },
});

// The body of the component's `public.add`, shard 0, on `benchShards`.
async function addInApp(ctx: MutationCtx, name: string, count: number) {
  const shard = 0;
  const row = await ctx.db
    .query("benchShards")
    .withIndex("name", (q) => q.eq("name", name).eq("shard", shard))
    .unique();
  if (row) {
    await ctx.db.patch(row._id, { value: row.value + count });
  } else {
    await ctx.db.insert("benchShards", { name, value: count, shard });
  }
  return shard;
}

export const inApp = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    for (let i = 0; i < n; i++) await addInApp(ctx, "bench", 1);
  },
});

export const addInAppFunction = internalMutation({
  args: { name: v.string(), count: v.number() },
  handler: async (ctx, { name, count }) => await addInApp(ctx, name, count),
});

export const viaAppFunction = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    for (let i = 0; i < n; i++) {
      await ctx.runMutation(internal.bench.addInAppFunction, { name: "bench", count: 1 });
    }
  },
});
