import { v } from "convex/values";
import { mutation, query } from "./_generated/server";

/** Find or create a user by name; returns the user's id. */
export const join = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const existing = await ctx.db
      .query("users")
      .withIndex("by_name", (q) => q.eq("name", name))
      .unique();
    if (existing !== null) {
      return existing._id;
    }
    return await ctx.db.insert("users", { name, status: "online" });
  },
});

export const list = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("users").collect(),
});
