import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  accounts: defineTable({ name: v.string(), balance: v.int64() }).index("by_name", ["name"]),
  transfers: defineTable({
    key: v.string(),
    from: v.string(),
    to: v.string(),
    amount: v.int64(),
  }).index("by_key", ["key"]),
});
