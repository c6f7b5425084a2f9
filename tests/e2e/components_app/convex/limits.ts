// @convex-dev/rate-limiter: a token bucket and a fixed window in one instance, and a
// second instance ("signupLimiter") with a limit of the same name, kept apart.
import { HOUR, MINUTE, RateLimiter } from "@convex-dev/rate-limiter";
import { v } from "convex/values";
import { components } from "./_generated/api";
import { mutation, query } from "./_generated/server";

const rateLimiter = new RateLimiter(components.rateLimiter, {
  send: { kind: "token bucket", rate: 3, period: MINUTE, capacity: 3 },
  signup: { kind: "fixed window", rate: 2, period: HOUR },
});

const signupLimiter = new RateLimiter(components.signupLimiter, {
  send: { kind: "token bucket", rate: 10, period: MINUTE, capacity: 10 },
});

export const send = mutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => await rateLimiter.limit(ctx, "send", { key }),
});

export const sendOrThrow = mutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => await rateLimiter.limit(ctx, "send", { key, throws: true }),
});

// Consumes a token, then fails: the component's write rolls back with the caller's.
export const sendThenFail = mutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => {
    await rateLimiter.limit(ctx, "send", { key });
    throw new Error("failed after taking a token");
  },
});

export const signup = mutation({
  args: {},
  handler: async (ctx) => await rateLimiter.limit(ctx, "signup"),
});

export const check = query({
  args: { key: v.string() },
  handler: async (ctx, { key }) => await rateLimiter.check(ctx, "send", { key }),
});

export const sendOther = mutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => await signupLimiter.limit(ctx, "send", { key }),
});

export const reset = mutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => await rateLimiter.reset(ctx, "send", { key }),
});
