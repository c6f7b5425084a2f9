import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  messages: defineTable({
    body: v.string(),
    fetched: v.optional(v.string()),
    file: v.optional(v.id("_storage")),
  }),
  ticks: defineTable({ count: v.number() }),
});
