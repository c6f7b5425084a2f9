import { v } from "convex/values";
import { action } from "./_generated/server";

export const save = action({
  args: { text: v.string() },
  handler: async (ctx, { text }) =>
    await ctx.storage.store(new Blob([text], { type: "text/plain" })),
});
