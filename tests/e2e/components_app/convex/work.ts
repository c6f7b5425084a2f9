// @convex-dev/workpool: an action and a mutation enqueued with an onComplete callback
// (the component runs them through the scheduler and calls back through handles),
// and an action that fails, reported to its callback as "failed".
import { Workpool } from "@convex-dev/workpool";
import { v } from "convex/values";
import { components, internal } from "./_generated/api";
import type { DataModel } from "./_generated/dataModel";
import { internalAction, internalMutation, mutation, query } from "./_generated/server";

const pool = new Workpool(components.jobs, { maxParallelism: 2, logLevel: "WARN" });

export const double = internalAction({
  args: { n: v.number() },
  handler: async (_ctx, { n }) => n * 2,
});

export const fail = internalAction({
  args: {},
  handler: async () => {
    throw new Error("this job fails");
  },
});

export const record = internalMutation({
  args: { job: v.string(), value: v.number() },
  handler: async (ctx, args) => {
    await ctx.db.insert("jobResults", args);
    return args.value;
  },
});

export const done = pool.defineOnComplete<DataModel>({
  context: v.string(),
  handler: async (ctx, { context, result }) => {
    await ctx.db.insert("completions", {
      job: context,
      kind: result.kind,
      returnValue:
        result.kind === "success" ? result.returnValue : result.kind === "failed" ? result.error : null,
    });
  },
});

export const start = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    const onComplete = internal.work.done;
    return [
      await pool.enqueueAction(ctx, internal.work.double, { n }, { onComplete, context: "double" }),
      await pool.enqueueMutation(
        ctx,
        internal.work.record,
        { job: "record", value: n },
        { onComplete, context: "record" },
      ),
      await pool.enqueueAction(ctx, internal.work.fail, {}, { onComplete, context: "fail", retry: false }),
    ];
  },
});

export const completions = query({
  args: {},
  handler: async (ctx) =>
    (await ctx.db.query("completions").collect())
      .map(({ job, kind, returnValue }) => ({ job, kind, returnValue }))
      .sort((a, b) => a.job.localeCompare(b.job)),
});

export const results = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("jobResults").collect()).map(({ job, value }) => ({ job, value })),
});

export const status = query({
  args: { id: v.string() },
  handler: async (ctx, { id }) => await pool.status(ctx, id as never),
});
