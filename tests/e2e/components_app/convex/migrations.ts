// @convex-dev/migrations: a migration over `items`, run in small batches (each batch a
// function the component schedules through a handle to it), and its status.
import { Migrations } from "@convex-dev/migrations";
import { v } from "convex/values";
import { components, internal } from "./_generated/api";
import type { DataModel } from "./_generated/dataModel";
import { mutation, query } from "./_generated/server";

export const migrations = new Migrations<DataModel>(components.migrations);

export const setDefaultStatus = migrations.define({
  table: "items",
  batchSize: 3,
  migrateOne: (_ctx, doc) => (doc.status === undefined ? { status: "active" } : undefined),
});

// The README's general-purpose runner: `npx convex run migrations:run '{"fn": ...}'`.
export const run = migrations.runner();

export const seed = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    for (let i = 0; i < n; i++) {
      await ctx.db.insert("items", i % 4 === 0 ? { name: `item${i}`, status: "kept" } : { name: `item${i}` });
    }
  },
});

export const start = mutation({
  args: {},
  handler: async (ctx) => {
    await migrations.runOne(ctx, internal.migrations.setDefaultStatus);
  },
});

export const status = query({
  args: {},
  handler: async (ctx) =>
    await migrations.getStatus(ctx, { migrations: [internal.migrations.setDefaultStatus] }),
});

export const statuses = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("items").collect()).map((item) => item.status ?? null),
});
