import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

// One table carries every kind of read the load generator issues: an index on the
// author (point reads), the creation-time order (the newest messages), a text index
// on the body and a 16-dimension vector index on the embedding.
export default defineSchema({
  messages: defineTable({
    author: v.string(),
    body: v.string(),
    sentAtMs: v.float64(),
    embedding: v.array(v.float64()),
  })
    .index("by_author", ["author"])
    .searchIndex("search_body", { searchField: "body", filterFields: ["author"] })
    .vectorIndex("by_embedding", { vectorField: "embedding", dimensions: 16 }),
});
