import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();
crons.interval("node tick", { seconds: 1 }, internal.nodeWork.tick, {});
export default crons;
