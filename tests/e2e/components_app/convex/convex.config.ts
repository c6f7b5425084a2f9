// The app's components, from npm, as their READMEs install them. The rate limiter is
// used twice, under two names: two instances with their own tables.
import { defineApp } from "convex/server";
import aggregate from "@convex-dev/aggregate/convex.config.js";
import migrations from "@convex-dev/migrations/convex.config.js";
import rateLimiter from "@convex-dev/rate-limiter/convex.config.js";
import shardedCounter from "@convex-dev/sharded-counter/convex.config.js";
import workpool from "@convex-dev/workpool/convex.config.js";

const app = defineApp();
app.use(rateLimiter);
app.use(rateLimiter, { name: "signupLimiter" });
app.use(aggregate, { name: "scoreAggregate" });
app.use(shardedCounter);
app.use(migrations);
app.use(workpool, { name: "jobs" });

export default app;
