import { v } from "convex/values";
import { internalMutation, mutation, query } from "./_generated/server";
import { internal } from "./_generated/api";

export const scheduleNode = mutation({
  args: { tag: v.string(), fail: v.boolean() },
  handler: async (ctx, args) => {
    return await ctx.scheduler.runAfter(0, internal.nodeWork.work, args);
  },
});

export const record = internalMutation({
  args: { tag: v.string(), details: v.any() },
  handler: async (ctx, { tag, details }) => {
    const meta = await ctx.meta.getRequestMetadata();
    await ctx.db.insert("runs", {
      tag,
      details,
      scheduledFunctionId: meta.scheduledFunctionId ?? null,
    });
  },
});

export const runs = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("runs").collect(),
});

export const job = query({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});
