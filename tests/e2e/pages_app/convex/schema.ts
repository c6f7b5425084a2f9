import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  items: defineTable({ rank: v.number() }).index("by_rank", ["rank"]),
});
