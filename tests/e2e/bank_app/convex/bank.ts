import { v } from "convex/values";
import { mutation, query } from "./_generated/server";

/** Open the accounts named, each with the same balance (once). */
export const open = mutation({
  args: { names: v.array(v.string()), balance: v.int64() },
  handler: async (ctx, { names, balance }) => {
    for (const name of names) {
      await ctx.db.insert("accounts", { name, balance });
    }
  },
});

/** Move `amount` between two accounts and record it under the caller's unique `key`. */
export const transfer = mutation({
  args: { key: v.string(), from: v.string(), to: v.string(), amount: v.int64() },
  handler: async (ctx, { key, from, to, amount }) => {
    const a = await ctx.db.query("accounts").withIndex("by_name", (q) => q.eq("name", from)).unique();
    const b = await ctx.db.query("accounts").withIndex("by_name", (q) => q.eq("name", to)).unique();
    if (a === null || b === null) throw new Error("no such account");
    if (a.balance < amount) return false;
    await ctx.db.patch(a._id, { balance: a.balance - amount });
    await ctx.db.patch(b._id, { balance: b.balance + amount });
    await ctx.db.insert("transfers", { key, from, to, amount });
    return true;
  },
});

export const balances = query({
  args: {},
  handler: async (ctx) => {
    const accounts = await ctx.db.query("accounts").collect();
    return Object.fromEntries(accounts.map((a) => [a.name, a.balance]));
  },
});

export const ledger = query({
  args: {},
  handler: async (ctx) => {
    const transfers = await ctx.db.query("transfers").collect();
    return transfers.map((t) => [t.key, t.from, t.to, t.amount]);
  },
});
