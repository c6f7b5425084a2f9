// Time travel: `?ts=<ns>` in the URL reads every data screen as of that commit. The
// control moves it: a slider over the retained history, a date and time, the previous
// or next commit, or back to live.
import { useConvex } from "convex/react";
import { useState } from "react";
import { useSearchParams } from "react-router-dom";
import { dashboardQuery } from "../api";
import { Alert, errorText } from "./errors";
import { useDashboardQuery } from "./useDashboardQuery";
import { formatTime, tsToDate } from "./values";

type Range = { oldestTs: string; newestTs: string };

export type TimeTravel = {
  atTs: string | undefined; // the ts to read at (undefined: live)
  outside: string | null; // why atTs cannot be read, if it cannot
  pending: boolean; // atTs given, the window not known yet
  requested: string | null; // the URL's ts as written (even when it cannot be read)
  range: Range | undefined;
  setTs: (ts: string | null) => void;
};

const STEPS = 1000;

export function useTimeTravel(): TimeTravel {
  const [params, setParams] = useSearchParams();
  const raw = params.get("ts");
  const range = useDashboardQuery<Range>("data:range", {}).data;
  let atTs: string | undefined;
  let outside: string | null = null;
  if (raw !== null) {
    if (!/^\d+$/.test(raw)) outside = `"${raw}" is not a timestamp: use nanoseconds, e.g. ?ts=${range?.newestTs ?? "1733300000000000000"}.`;
    else atTs = raw;
  }
  if (atTs !== undefined && range !== undefined) {
    const ts = BigInt(atTs);
    if (ts < BigInt(range.oldestTs)) {
      outside =
        `${formatTime(tsToDate(atTs))} is before the oldest history kept ` +
        `(${formatTime(tsToDate(range.oldestTs))}, ts ${range.oldestTs}).`;
    } else if (ts > BigInt(range.newestTs)) {
      outside =
        `${formatTime(tsToDate(atTs))} is after the newest commit ` +
        `(${formatTime(tsToDate(range.newestTs))}, ts ${range.newestTs}).`;
    }
  }
  const setTs = (ts: string | null) => {
    const next = new URLSearchParams(params);
    if (ts === null) next.delete("ts");
    else next.set("ts", ts);
    setParams(next);
  };
  // A past ts is read once the window is known to hold it.
  const pending = atTs !== undefined && range === undefined;
  return {
    atTs: outside === null ? atTs : undefined,
    outside,
    pending,
    requested: raw,
    range,
    setTs,
  };
}

// Whether a screen may query: not while the URL's ts is outside the window.
export function readable(travel: TimeTravel): boolean {
  return travel.outside === null && !travel.pending;
}

function toLocalInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export function TimeTravelControl({ travel }: { travel: TimeTravel }) {
  const client = useConvex();
  const [error, setError] = useState<string | null>(null);
  const { range, atTs, setTs } = travel;
  const live = atTs === undefined && travel.outside === null && !travel.pending;
  const oldest = range ? BigInt(range.oldestTs) : 0n;
  const newest = range ? BigInt(range.newestTs) : 0n;
  const span = newest - oldest;
  const position =
    atTs === undefined || span <= 0n
      ? STEPS
      : Number(((BigInt(atTs) - oldest) * BigInt(STEPS)) / span);

  const neighbour = async (direction: "previous" | "next") => {
    setError(null);
    const from = atTs ?? range?.newestTs;
    if (from === undefined) return;
    try {
      const ts = (await client.query(dashboardQuery("data:neighbourTs"), {
        ts: from,
        direction,
      })) as string | null;
      if (ts === null) {
        if (direction === "next") setTs(null);
        else setError("There is no older commit in the history kept.");
      } else {
        setTs(ts);
      }
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section className="time-travel" aria-label="Time travel">
      <p className="time-status" aria-live="polite">
        {live ? (
          <strong>Live</strong>
        ) : atTs !== undefined ? (
          <>
            <strong>As of {formatTime(tsToDate(atTs))}</strong> <span className="muted">ts {atTs}</span>
          </>
        ) : null}
      </p>
      <label className="slider">
        <span>Point in time</span>
        <input
          type="range"
          min={0}
          max={STEPS}
          step={1}
          value={Math.max(0, Math.min(STEPS, position))}
          disabled={!range || span <= 0n}
          onChange={(e) => {
            const step = BigInt(e.target.value);
            if (step >= BigInt(STEPS)) setTs(null);
            else setTs((oldest + (span * step) / BigInt(STEPS)).toString());
          }}
        />
      </label>
      <label>
        <span>Date and time</span>
        {/* Uncontrolled (typing is not fought by live updates); shown afresh whenever
            the URL's ts changes. */}
        <input
          key={travel.requested ?? "live"}
          type="datetime-local"
          step={1}
          defaultValue={toLocalInput(
            travel.requested && /^\d+$/.test(travel.requested)
              ? tsToDate(travel.requested)
              : range
                ? tsToDate(range.newestTs)
                : new Date(),
          )}
          onChange={(e) => {
            const ms = new Date(e.target.value).getTime();
            if (Number.isNaN(ms)) return;
            // The whole chosen second: its commits are included; now or later is live.
            const ts = BigInt(ms) * 1_000_000n + 999_999_999n;
            setTs(range && ts >= BigInt(range.newestTs) ? null : ts.toString());
          }}
        />
      </label>
      <button type="button" onClick={() => void neighbour("previous")} disabled={!range}>
        Previous commit
      </button>
      <button type="button" onClick={() => void neighbour("next")} disabled={live}>
        Next commit
      </button>
      <button type="button" onClick={() => setTs(null)} disabled={live}>
        Live
      </button>
      <Alert>{travel.outside ?? error}</Alert>
    </section>
  );
}
