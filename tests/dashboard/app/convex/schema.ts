import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  messages: defineTable({ author: v.string(), body: v.string(), likes: v.number() }).index(
    "by_author",
    ["author"],
  ),
  channels: defineTable({ name: v.string(), private: v.optional(v.boolean()) }),
});
