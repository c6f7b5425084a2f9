import { ConvexError, v } from "convex/values";
import { internalMutation, mutation, query } from "./_generated/server";

/** The newest messages of a channel, oldest first. */
export const list = query({
  args: { channel: v.id("channels"), limit: v.optional(v.number()) },
  handler: async (ctx, { channel, limit }) => {
    const newest = await ctx.db
      .query("messages")
      .withIndex("by_channel", (q) => q.eq("channel", channel))
      .order("desc")
      .take(limit ?? 50);
    return newest.reverse();
  },
});

export const send = mutation({
  args: { channel: v.id("channels"), author: v.id("users"), body: v.string() },
  handler: async (ctx, { channel, author, body }) => {
    if (body.trim().length === 0) {
      throw new ConvexError({ code: "EMPTY", message: "A message needs some text." });
    }
    if ((await ctx.db.get(channel)) === null) {
      throw new ConvexError({ code: "NO_CHANNEL", message: "No such channel." });
    }
    console.log("sending", body);
    return await ctx.db.insert("messages", { channel, author, body, likes: 0n });
  },
});

export const like = mutation({
  args: { id: v.id("messages") },
  handler: async (ctx, { id }) => {
    const message = await ctx.db.get(id);
    if (message === null) {
      throw new ConvexError("No such message.");
    }
    await ctx.db.patch(id, { likes: message.likes + 1n });
    return message.likes + 1n;
  },
});

/** Admin-only: clear a channel. */
export const clear = internalMutation({
  args: { channel: v.id("channels") },
  handler: async (ctx, { channel }) => {
    const all = await ctx.db
      .query("messages")
      .withIndex("by_channel", (q) => q.eq("channel", channel))
      .collect();
    for (const message of all) {
      await ctx.db.delete(message._id);
    }
    return all.length;
  },
});
