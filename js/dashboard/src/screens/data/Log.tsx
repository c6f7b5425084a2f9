// The commit log, newest first: each commit's time, the function that made it and what
// it wrote; "Older" pages back; a commit opens with its documents before and after.
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { Alert } from "../../components/errors";
import { TimeTravelControl, useTimeTravel } from "../../components/TimeTravel";
import { useDashboardQuery } from "../../components/useDashboardQuery";
import { formatTime, JsonBlock } from "../../components/values";
import { tableLink } from "./Tables";

type Fn = { path: string; kind: string; identity: string; caller: string } | null;
type Write = { table: string; component: string; id: string; op: string };
type Entry = { ts: string; wallTime: number; function: Fn; writes: Write[]; writeCount?: number };
type CommitWrite = Write & { value: unknown; previous: unknown };
type Commit = { ts: string; wallTime: number; function: Fn; writes: CommitWrite[] };

const LIMIT = 25;

function describe(fn: Fn): string {
  if (fn === null) return "(system)";
  return `${fn.path}`;
}

export function LogScreen() {
  const [params, setParams] = useSearchParams();
  const travel = useTimeTravel();
  // With a time travel ts the log starts at that commit.
  const start = travel.atTs === undefined ? undefined : (BigInt(travel.atTs) + 1n).toString();
  const [before, setBefore] = useState<{ start?: string; pages: string[] }>({ pages: [] });
  const pages = before.start === start ? before.pages : [];
  const beforeTs = pages.length ? pages[pages.length - 1] : start;
  const log = useDashboardQuery<Entry[]>("data:log", { beforeTs, limit: LIMIT });
  const open = params.get("commit");
  const openCommit = (ts: string | null) => {
    const next = new URLSearchParams(params);
    if (ts === null) next.delete("commit");
    else next.set("commit", ts);
    setParams(next);
  };
  const entries = log.data ?? [];
  return (
    <>
      <h1>Commit log</h1>
      <TimeTravelControl travel={travel} />
      <Alert>{log.error}</Alert>
      {open && <CommitView ts={open} onClose={() => openCommit(null)} />}
      <table className="grid log" aria-label="Commits">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Function</th>
            <th scope="col">Identity</th>
            <th scope="col">Writes</th>
            <th scope="col">ts</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.ts}>
              <td>
                <button type="button" className="link" onClick={() => openCommit(entry.ts)}>
                  {formatTime(entry.wallTime)}
                </button>
              </td>
              <td>
                {describe(entry.function)}
                {entry.function && <span className="muted"> {entry.function.kind}</span>}
              </td>
              <td>{entry.function?.identity ?? ""}</td>
              <td>
                {summarize(entry.writes)}
                {(entry.writeCount ?? entry.writes.length) > entry.writes.length &&
                  ` … ${entry.writeCount} in all`}
              </td>
              <td className="muted">{entry.ts}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {entries.length === 0 && !log.loading && <p>No commits.</p>}
      <div className="actions">
        {pages.length > 0 && (
          <button type="button" onClick={() => setBefore({ start, pages: pages.slice(0, -1) })}>
            Newer
          </button>
        )}
        {entries.length === LIMIT && (
          <button
            type="button"
            onClick={() => setBefore({ start, pages: [...pages, entries[entries.length - 1].ts] })}
          >
            Older
          </button>
        )}
      </div>
    </>
  );
}

function summarize(writes: Write[]): string {
  const counts = new Map<string, number>();
  for (const w of writes) {
    const key = `${w.op} ${w.component ? `${w.component}/` : ""}${w.table}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].map(([k, n]) => (n > 1 ? `${k} ×${n}` : k)).join(", ");
}

function CommitView({ ts, onClose }: { ts: string; onClose: () => void }) {
  const commit = useDashboardQuery<Commit>("data:commit", { ts });
  const data = commit.data;
  return (
    <section className="panel" aria-label="Commit">
      <h2>Commit {ts}</h2>
      <button type="button" onClick={onClose}>
        Close commit
      </button>
      <Alert>{commit.error}</Alert>
      {data && (
        <>
          <p>
            {formatTime(data.wallTime)} — {describe(data.function)}
            {data.function && ` (${data.function.kind}, ${data.function.identity})`}
          </p>
          <p>
            <Link to={`/data?ts=${data.ts}`}>See the data as of this commit</Link>
          </p>
          {data.writes.map((w) => (
            <article key={`${w.table}-${w.id}`} className="write">
              <h3>
                {w.op} <Link to={tableLink(w, data.ts)}>{w.table}</Link> {w.id}
              </h3>
              <div className="before-after">
                <div>
                  <h4>Before</h4>
                  {w.previous === null ? <p className="muted">—</p> : <JsonBlock value={w.previous} />}
                </div>
                <div>
                  <h4>After</h4>
                  {w.value === null ? <p className="muted">—</p> : <JsonBlock value={w.value} />}
                </div>
              </div>
            </article>
          ))}
        </>
      )}
    </section>
  );
}
