// The Schedules screen: scheduled functions (pending ones can be canceled) and crons.
import "./ops.css";
import { useState } from "react";
import { useMutation } from "convex/react";
import { dashboardMutation } from "../../api";
import { Alert } from "../../components/errors";
import { useDashboardQuery } from "../../components/useDashboardQuery";
import { displayPath, errorText, type Figure, formatTime, num, showJson } from "./format";
import type { Cron, ScheduledJob } from "./types";

function stateName(state: ScheduledJob["state"]): string {
  return typeof state === "string" ? state : state.kind;
}

export function scheduleText(schedule: unknown): string {
  if (typeof schedule === "string") return schedule;
  const spec = schedule as { type?: string; cronExpr?: string; seconds?: Figure } | null;
  if (spec?.type === "cron" && spec.cronExpr) return `cron "${spec.cronExpr}"`;
  if (spec?.type === "interval" && spec.seconds !== undefined)
    return `every ${every(num(spec.seconds))}`;
  return showJson(schedule);
}

function every(seconds: number): string {
  const plural = (n: number, unit: string) => (n === 1 ? unit : `${n} ${unit}s`);
  if (seconds % 3600 === 0) return plural(seconds / 3600, "hour");
  if (seconds % 60 === 0) return plural(seconds / 60, "minute");
  return plural(seconds, "second");
}

// A job that has not finished yet can be canceled (a running one stops being retried).
const CANCELABLE = new Set(["pending", "inProgress"]);

export function SchedulesScreen() {
  return (
    <div className="ops-screen">
      <h1>Schedules</h1>
      <ScheduledFunctions />
      <Crons />
    </div>
  );
}

function ScheduledFunctions() {
  const { data: jobs, error } = useDashboardQuery<ScheduledJob[]>("ops:scheduled", {});
  const cancelJob = useMutation(dashboardMutation("ops:cancelJob"));
  const [problem, setProblem] = useState<string | null>(null);

  async function cancel(id: string) {
    setProblem(null);
    try {
      await cancelJob({ id });
    } catch (error) {
      setProblem(`Could not cancel ${id}: ${errorText(error)}`);
    }
  }

  return (
    <section aria-labelledby="scheduled-heading">
      <h2 id="scheduled-heading">Scheduled functions</h2>
      <Alert>{problem}</Alert>
      {error !== null ? (
        <Alert>Could not load the scheduled functions: {error}</Alert>
      ) : jobs === undefined ? (
        <p role="status">Loading scheduled functions…</p>
      ) : jobs.length === 0 ? (
        <p>No scheduled functions.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Function</th>
              <th scope="col">Scheduled time</th>
              <th scope="col">State</th>
              <th scope="col">Arguments</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => {
              const state = stateName(job.state);
              const name = job.component
                ? `${job.component}/${displayPath(job.name)}`
                : displayPath(job.name);
              return (
                <tr key={job.id}>
                  <td>{name}</td>
                  <td>{formatTime(job.scheduledTime)}</td>
                  <td>
                    {state}
                    {job.error && <div className="error">{job.error}</div>}
                  </td>
                  <td>
                    <code>
                      {JSON.stringify(job.args, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}
                    </code>
                  </td>
                  <td>
                    {CANCELABLE.has(state) && (
                      <button
                        type="button"
                        onClick={() => void cancel(job.id)}
                        aria-label={`Cancel ${name} (${job.id})`}
                      >
                        Cancel
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Crons() {
  const { data: crons, error } = useDashboardQuery<Cron[]>("ops:crons", {});
  return (
    <section aria-labelledby="crons-heading">
      <h2 id="crons-heading">Cron jobs</h2>
      {error !== null ? (
        <Alert>Could not load the cron jobs: {error}</Alert>
      ) : crons === undefined ? (
        <p role="status">Loading cron jobs…</p>
      ) : crons.length === 0 ? (
        <p>No cron jobs (define them in convex/crons.ts).</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Function</th>
              <th scope="col">Schedule</th>
              <th scope="col">Next run</th>
              <th scope="col">Last run</th>
            </tr>
          </thead>
          <tbody>
            {crons.map((cron) => (
              <tr key={cron.name}>
                <td>{cron.name}</td>
                <td>{displayPath(cron.functionName)}</td>
                <td>
                  <code>{scheduleText(cron.schedule)}</code>
                </td>
                <td>{formatTime(cron.nextRun)}</td>
                <td>{formatTime(cron.lastRun)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
