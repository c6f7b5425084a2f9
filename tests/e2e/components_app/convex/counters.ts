// @convex-dev/sharded-counter: inc/add/dec a named counter spread over shards; count
// reads every shard.
import { ShardedCounter } from "@convex-dev/sharded-counter";
import { v } from "convex/values";
import { components } from "./_generated/api";
import { mutation, query } from "./_generated/server";

const counter = new ShardedCounter(components.shardedCounter, { defaultShards: 4 });

export const inc = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => await counter.inc(ctx, name),
});

export const add = mutation({
  args: { name: v.string(), n: v.number() },
  handler: async (ctx, { name, n }) => await counter.add(ctx, name, n),
});

export const dec = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => await counter.dec(ctx, name),
});

export const count = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) => await counter.count(ctx, name),
});
