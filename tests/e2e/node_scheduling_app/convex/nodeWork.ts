"use node";
import { v } from "convex/values";
import { action, internalAction } from "./_generated/server";
import { internal } from "./_generated/api";

export const work = internalAction({
  args: { tag: v.string(), fail: v.boolean() },
  handler: async (ctx, { tag, fail }) => {
    console.log(`node work ${tag}`);
    if (fail) throw new Error(`node job ${tag} failed`);
    const meta = await ctx.meta.getRequestMetadata();
    const id = await ctx.storage.store(new Blob([`hello ${tag}`], { type: "text/plain" }));
    const blob = await ctx.storage.get(id);
    const url = await ctx.storage.getUrl(id);
    const served = url === null ? null : await (await fetch(url)).text();
    await ctx.scheduler.runAfter(0, internal.jobs.record, { tag: `${tag}-v8`, details: null });
    await ctx.runMutation(internal.jobs.record, {
      tag,
      details: {
        ownId: meta.scheduledFunctionId,
        text: blob === null ? null : await blob.text(),
        type: blob === null ? null : blob.type,
        served,
      },
    });
  },
});

export const tick = internalAction({
  args: {},
  handler: async (ctx) => {
    const meta = await ctx.meta.getRequestMetadata();
    await ctx.runMutation(internal.jobs.record, {
      tag: "cron",
      details: { ownId: meta.scheduledFunctionId },
    });
  },
});

export const direct = action({
  args: {},
  handler: async (ctx) => {
    const meta = await ctx.meta.getRequestMetadata();
    return { ownId: meta.scheduledFunctionId };
  },
});
