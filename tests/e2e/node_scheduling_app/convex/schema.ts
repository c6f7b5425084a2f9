import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  runs: defineTable({
    tag: v.string(),
    details: v.any(),
    scheduledFunctionId: v.union(v.string(), v.null()),
  }),
});
