import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();
crons.cron("nightly", "0 3 * * *", internal.tasks.addInternal, { text: "nightly" });
export default crons;
