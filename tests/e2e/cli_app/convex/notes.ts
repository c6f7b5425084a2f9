import { v } from "convex/values";
import { formatNote } from "../lib/format";
import { mutation, query } from "./_generated/server";

export const add = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    console.log("adding", text);
    const rank = BigInt((await ctx.db.query("notes").collect()).length);
    return await ctx.db.insert("notes", { text: formatNote(text), rank });
  },
});

export const list = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("notes").collect()).map((n) => n.text),
});

export const greeting = query({
  args: {},
  handler: async () => process.env.GREETING ?? "no greeting",
});

export const version = query({
  args: {},
  handler: async () => "v1",
});
