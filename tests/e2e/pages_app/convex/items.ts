import { paginationOptsValidator } from "convex/server";
import { v } from "convex/values";
import { mutation, query } from "./_generated/server";

const order = v.union(v.literal("asc"), v.literal("desc"));

// What usePaginatedQuery subscribes to, page by page.
export const list = query({
  args: { paginationOpts: paginationOptsValidator, order },
  handler: async (ctx, args) =>
    await ctx.db.query("items").withIndex("by_rank").order(args.order).paginate(args.paginationOpts),
});

// The whole result, to compare the pages with.
export const all = query({
  args: { order },
  handler: async (ctx, args) =>
    await ctx.db.query("items").withIndex("by_rank").order(args.order).collect(),
});

export const insert = mutation({
  args: { ranks: v.array(v.number()) },
  handler: async (ctx, { ranks }) => {
    const ids = [];
    for (const rank of ranks) ids.push(await ctx.db.insert("items", { rank }));
    return ids;
  },
});

export const removeRank = mutation({
  args: { rank: v.number() },
  handler: async (ctx, { rank }) => {
    const found = await ctx.db
      .query("items")
      .withIndex("by_rank", (q) => q.eq("rank", rank))
      .collect();
    for (const item of found) await ctx.db.delete(item._id);
    return found.length;
  },
});

// Two paginated queries in one function: the reference refuses the second.
export const twoPages = query({
  args: {},
  handler: async (ctx) => {
    await ctx.db.query("items").paginate({ cursor: null, numItems: 1 });
    return await ctx.db.query("items").paginate({ cursor: null, numItems: 1 });
  },
});
