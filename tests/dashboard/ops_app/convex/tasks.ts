import { v } from "convex/values";
import { internal } from "./_generated/api";
import { internalMutation, internalQuery, mutation, query } from "./_generated/server";

export const add = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    console.log("adding task", text);
    return await ctx.db.insert("tasks", { text, done: false });
  },
});

export const list = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("tasks").collect(),
});

export const double = internalQuery({
  args: { n: v.number(), note: v.optional(v.string()) },
  handler: async (_ctx, { n }) => {
    console.log("doubling", n);
    return { doubled: n * 2 };
  },
});

export const later = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) =>
    await ctx.scheduler.runAfter(3600 * 1000, internal.tasks.addInternal, { text }),
});

export const addInternal = internalMutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => await ctx.db.insert("tasks", { text, done: false }),
});

export const fail = mutation({
  args: {},
  handler: async () => {
    console.warn("about to fail");
    throw new Error("this task always fails");
  },
});
