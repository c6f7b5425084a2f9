// @convex-dev/aggregate: a TableAggregate over `scores`, sorted and summed by points,
// kept in step with the table in the same mutation, as the README says.
import { TableAggregate } from "@convex-dev/aggregate";
import { v } from "convex/values";
import { components } from "./_generated/api";
import type { DataModel } from "./_generated/dataModel";
import { mutation, query } from "./_generated/server";

const byPoints = new TableAggregate<{
  Key: number;
  DataModel: DataModel;
  TableName: "scores";
}>(components.scoreAggregate, {
  sortKey: (doc) => doc.points,
  sumValue: (doc) => doc.points,
});

export const add = mutation({
  args: { player: v.string(), points: v.number() },
  handler: async (ctx, args) => {
    const id = await ctx.db.insert("scores", args);
    await byPoints.insert(ctx, (await ctx.db.get(id))!);
    return id;
  },
});

export const setPoints = mutation({
  args: { id: v.id("scores"), points: v.number() },
  handler: async (ctx, { id, points }) => {
    const oldDoc = (await ctx.db.get(id))!;
    await ctx.db.patch(id, { points });
    await byPoints.replace(ctx, oldDoc, (await ctx.db.get(id))!);
  },
});

export const remove = mutation({
  args: { id: v.id("scores") },
  handler: async (ctx, { id }) => {
    const doc = (await ctx.db.get(id))!;
    await ctx.db.delete(id);
    await byPoints.delete(ctx, doc);
  },
});

export const stats = query({
  args: { atLeast: v.optional(v.number()) },
  handler: async (ctx, { atLeast }) => {
    const bounds =
      atLeast === undefined ? undefined : { lower: { key: atLeast, inclusive: true } };
    const top = await byPoints.max(ctx);
    return {
      count: await byPoints.count(ctx, { bounds }),
      sum: await byPoints.sum(ctx, { bounds }),
      max: top === null ? null : top.key,
      // What the table itself says, to compare with the aggregate's figures.
      tableCount: (await ctx.db.query("scores").collect()).length,
    };
  },
});
