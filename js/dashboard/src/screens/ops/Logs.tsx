// The Logs screen: every function execution as it happens, newest first, with its
// console lines and error; filtered by function name and outcome.
import "./ops.css";
import { useState } from "react";
import { Alert } from "../../components/errors";
import { formatDuration, formatTime } from "./format";
import { type LogEntry, type LogLineJson, useFunctionLogs } from "./logStream";

const KEPT = 500;

type Outcome = "all" | "success" | "failure";

function lineText(line: LogLineJson | string): string {
  return typeof line === "string" ? line : `[${line.level}] ${line.messages.join(" ")}`;
}

function functionName(entry: LogEntry): string {
  return entry.componentPath ? `${entry.componentPath}/${entry.identifier}` : entry.identifier;
}

export function LogsScreen() {
  const { entries, problem } = useFunctionLogs(KEPT);
  const [text, setText] = useState("");
  const [outcome, setOutcome] = useState<Outcome>("all");
  const shown = entries.filter(
    (entry) =>
      functionName(entry).toLowerCase().includes(text.toLowerCase()) &&
      (outcome === "all" || (outcome === "success") === (entry.error === null)),
  );

  return (
    <div className="ops-screen">
      <h1>Logs</h1>
      <div className="filters" role="search">
        <label>
          Function{" "}
          <input type="search" value={text} onChange={(event) => setText(event.target.value)} />
        </label>
        <label>
          Outcome{" "}
          <select value={outcome} onChange={(event) => setOutcome(event.target.value as Outcome)}>
            <option value="all">All</option>
            <option value="success">Success</option>
            <option value="failure">Failure</option>
          </select>
        </label>
        <span className="muted">
          {shown.length} of {entries.length} executions (the newest {KEPT} are kept)
        </span>
      </div>
      <Alert>{problem}</Alert>
      {entries.length === 0 ? (
        <p role="status">Waiting for function executions…</p>
      ) : (
        <ol className="log-entries" aria-label="Function executions">
          {shown.map((entry) => (
            <LogRow key={entry.executionId + entry.requestId} entry={entry} />
          ))}
        </ol>
      )}
    </div>
  );
}

function LogRow({ entry }: { entry: LogEntry }) {
  const failed = entry.error !== null;
  const started = entry.executionTimestamp * 1000;
  return (
    <li className={`log-entry ${failed ? "failed" : ""}`}>
      <div className="log-head">
        <time dateTime={new Date(started).toISOString()}>{formatTime(started)}</time>
        <span className="log-function">{functionName(entry)}</span>
        <span className="badge">{entry.udfType}</span>
        <span className={`badge outcome-${failed ? "failure" : "success"}`}>
          {failed ? "failure" : "success"}
        </span>
        <span>{formatDuration(entry.executionTime * 1000)}</span>
        {entry.caller && entry.caller !== "client" && (
          <span className="muted">by {entry.caller}</span>
        )}
      </div>
      {entry.logLines.length > 0 && (
        <pre className="log-lines">{entry.logLines.map(lineText).join("\n")}</pre>
      )}
      {failed && <pre className="error">{entry.error}</pre>}
    </li>
  );
}
