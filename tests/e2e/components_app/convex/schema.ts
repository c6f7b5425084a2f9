import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  // Summed and counted by the aggregate component.
  scores: defineTable({ player: v.string(), points: v.number() }),
  // Rewritten by a migration: `status` is filled in where it is missing.
  items: defineTable({ name: v.string(), status: v.optional(v.string()) }),
  // What the workpool's jobs and their onComplete callbacks leave behind.
  jobResults: defineTable({ job: v.string(), value: v.number() }),
  completions: defineTable({
    job: v.string(),
    kind: v.string(),
    returnValue: v.optional(v.any()),
  }),
  // The benchmark's baseline: the sharded counter's own code on an app table.
  benchShards: defineTable({ name: v.string(), value: v.number(), shard: v.number() }).index(
    "name",
    ["name", "shard"],
  ),
});
