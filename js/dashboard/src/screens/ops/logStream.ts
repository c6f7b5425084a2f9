// Follows the function log: long polls of `GET /api/stream_function_logs?cursor=C`
// (admin key), newest first, at most `limit` entries; the poll stops on unmount.
import { useEffect, useRef, useState } from "react";
import { adminFetch, useSession } from "../../session";
import { errorText } from "./format";

export type LogLineJson = {
  messages: string[];
  level: string;
  timestamp: number;
  isTruncated: boolean;
};

export type LogEntry = {
  udfType: string;
  identifier: string;
  componentPath: string | null;
  logLines: (LogLineJson | string)[];
  executionTimestamp: number; // seconds
  executionTime: number; // seconds
  caller: string;
  error: string | null;
  requestId: string;
  executionId: string;
};

const RETRY_MS = 2000;

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function useFunctionLogs(limit: number): { entries: LogEntry[]; problem: string | null } {
  const session = useSession();
  // The stream restarts only when the deployment or key changes, not on every render.
  const current = useRef(session);
  current.current = session;
  const { deploymentUrl, adminKey } = session;
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    const stop = new AbortController();
    const { signal } = stop;
    setEntries([]); // a new follow starts from the oldest kept entry again
    async function follow() {
      let cursor = 0;
      while (!signal.aborted) {
        try {
          const response = await adminFetch(
            current.current,
            `/api/stream_function_logs?cursor=${cursor}`,
            {
              signal,
              headers: { "Convex-Client": "dashboard-0.1.0" },
            },
          );
          const body = (await response.json()) as {
            entries?: LogEntry[];
            newCursor?: number;
            message?: string;
          };
          if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`);
          cursor = body.newCursor ?? cursor;
          const arrived = (body.entries ?? []).filter((entry) => entry.identifier !== undefined);
          if (arrived.length > 0) {
            setEntries((held) => [...arrived.reverse(), ...held].slice(0, limit));
          }
          setProblem(null);
        } catch (error) {
          if (signal.aborted) return;
          setProblem(`The log stream failed: ${errorText(error)}; retrying.`);
          await pause(RETRY_MS, signal);
        }
      }
    }
    void follow();
    return () => stop.abort();
  }, [deploymentUrl, adminKey, limit]);

  return { entries, problem };
}
