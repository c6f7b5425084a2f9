import { v } from "convex/values";
import { mutation } from "./_generated/server";

export const create = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => await ctx.db.insert("channels", { name }),
});
