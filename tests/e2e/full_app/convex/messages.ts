import { v } from "convex/values";
import { internal } from "./_generated/api";
import { internalAction, internalMutation, query } from "./_generated/server";

export const receive = internalMutation({
  args: { body: v.string() },
  handler: async (ctx, { body }) => {
    const id = await ctx.db.insert("messages", { body });
    await ctx.scheduler.runAfter(0, internal.messages.enrich, { id, body });
    return id;
  },
});

// Asks another service about the message, keeps its answer as a file.
export const enrich = internalAction({
  args: { id: v.id("messages"), body: v.string() },
  handler: async (ctx, { id, body }) => {
    const response = await fetch(`${process.env.ECHO_URL}?text=${encodeURIComponent(body)}`);
    const fetched = await response.text();
    const file = await ctx.storage.store(new Blob([fetched], { type: "text/plain" }));
    await ctx.runMutation(internal.messages.attach, { id, fetched, file });
  },
});

export const attach = internalMutation({
  args: { id: v.id("messages"), fetched: v.string(), file: v.id("_storage") },
  handler: async (ctx, { id, fetched, file }) => {
    await ctx.db.patch(id, { fetched, file });
  },
});

export const list = query({
  args: {},
  handler: async (ctx) =>
    Promise.all(
      (await ctx.db.query("messages").collect()).map(async (m) => ({
        body: m.body,
        fetched: m.fetched ?? null,
        url: m.file === undefined ? null : await ctx.storage.getUrl(m.file),
      })),
    ),
});

export const tick = internalMutation({
  args: {},
  handler: async (ctx) => {
    const doc = await ctx.db.query("ticks").first();
    if (doc === null) await ctx.db.insert("ticks", { count: 1 });
    else await ctx.db.patch(doc._id, { count: doc.count + 1 });
  },
});

export const ticks = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("ticks").first())?.count ?? 0,
});
