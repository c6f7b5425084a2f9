import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  users: defineTable({
    name: v.string(),
    status: v.optional(v.union(v.literal("online"), v.literal("away"))),
  }).index("by_name", ["name"]),
  channels: defineTable({
    name: v.string(),
    topic: v.optional(v.string()),
  }).index("by_name", ["name"]),
  messages: defineTable({
    channel: v.id("channels"),
    author: v.id("users"),
    body: v.string(),
    likes: v.int64(),
  }).index("by_channel", ["channel"]),
});
