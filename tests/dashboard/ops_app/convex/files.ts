import { v } from "convex/values";
import { action, query } from "./_generated/server";

export const save = action({
  args: { text: v.string() },
  handler: async (ctx, { text }) =>
    await ctx.storage.store(new Blob([text], { type: "text/plain" })),
});

export const list = query({
  args: {},
  handler: async (ctx) => await ctx.db.system.query("_storage").collect(),
});
