import { v } from "convex/values";
import { internalMutation, mutation, query } from "./_generated/server";

export const list = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("messages").order("desc").take(50),
});

export const send = mutation({
  args: { author: v.string(), body: v.string() },
  handler: async (ctx, { author, body }) => {
    console.log(`sending a message from ${author}`);
    return await ctx.db.insert("messages", { author, body, likes: 0 });
  },
});

export const like = mutation({
  args: { id: v.id("messages") },
  handler: async (ctx, { id }) => {
    const message = await ctx.db.get(id);
    if (message === null) throw new Error("no such message");
    await ctx.db.patch(id, { likes: message.likes + 1 });
  },
});

export const clearAll = internalMutation({
  args: {},
  handler: async (ctx) => {
    for (const m of await ctx.db.query("messages").collect()) await ctx.db.delete(m._id);
  },
});
