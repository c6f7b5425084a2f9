import { v } from "convex/values";
import { action, mutation, query } from "./_generated/server";

/** A message from the load generator; `sentAtMs` is the client's clock when it sent it. */
export const send = mutation({
  args: {
    author: v.string(),
    body: v.string(),
    sentAtMs: v.float64(),
    embedding: v.array(v.float64()),
  },
  handler: async (ctx, args) => await ctx.db.insert("messages", args),
});

/** One indexed read: the newest message of an author, or null. */
export const latestBy = query({
  args: { author: v.string() },
  handler: async (ctx, { author }) =>
    await ctx.db
      .query("messages")
      .withIndex("by_author", (q) => q.eq("author", author))
      .order("desc")
      .first(),
});

/** The newest messages, newest first: what every subscriber holds. */
export const newest = query({
  args: { limit: v.number() },
  handler: async (ctx, { limit }) =>
    (await ctx.db.query("messages").order("desc").take(limit)).map((m) => ({
      id: m._id,
      author: m.author,
      body: m.body,
      sentAtMs: m.sentAtMs,
    })),
});

/** Full-text search over the bodies: the ids of the ten best matches. */
export const search = query({
  args: { text: v.string() },
  handler: async (ctx, { text }) =>
    (
      await ctx.db
        .query("messages")
        .withSearchIndex("search_body", (q) => q.search("body", text))
        .take(10)
    ).map((m) => m._id),
});

/** Nearest neighbours of a vector: the ids and scores of the ten closest messages. */
export const similar = action({
  args: { vector: v.array(v.float64()) },
  handler: async (ctx, { vector }) => {
    const results = await ctx.vectorSearch("messages", "by_embedding", { vector, limit: 10 });
    return results.map((r) => ({ id: r._id, score: r._score }));
  },
});
