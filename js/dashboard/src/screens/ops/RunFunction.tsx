// Runs one function as the admin through the HTTP API (`POST /api/function`), with
// its arguments typed as Convex JSON; shows the result, console lines, duration, error.
import { useState } from "react";
import { jsonToConvex } from "convex/values";
import { adminFetch, useSession } from "../../session";
import { errorText, formatDuration, showJson } from "./format";
import type { FunctionInfo } from "./types";
import { exampleArgs } from "./validators";

type RunResult =
  | { ok: true; value: unknown; logLines: string[]; durationMs: number }
  | { ok: false; error: string; logLines: string[]; durationMs: number | null };

type UdfResponse = {
  status?: "success" | "error";
  value?: unknown;
  errorMessage?: string;
  errorData?: unknown;
  logLines?: string[];
  code?: string;
  message?: string;
};

function parseArgs(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim() === "" ? "{}" : text);
  } catch (error) {
    throw new Error(`The arguments are not valid JSON: ${errorText(error)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error('The arguments must be a JSON object, e.g. {} or {"name": "Ada"}.');
  }
  return parsed as Record<string, unknown>;
}

function decoded(value: unknown): unknown {
  try {
    return jsonToConvex(value as never);
  } catch {
    return value;
  }
}

export function RunFunction({ fn }: { fn: FunctionInfo }) {
  const session = useSession();
  const [argsText, setArgsText] = useState(() => JSON.stringify(exampleArgs(fn.args), null, 2));
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<RunResult | null>(null);

  async function run() {
    let args: Record<string, unknown>;
    try {
      args = parseArgs(argsText);
    } catch (error) {
      setResult({ ok: false, error: errorText(error), logLines: [], durationMs: null });
      return;
    }
    setRunning(true);
    setResult(null);
    const body: Record<string, unknown> = { path: fn.identifier, args, format: "json" };
    if (fn.component) body.componentPath = fn.component;
    const started = performance.now();
    try {
      const response = await adminFetch(session, "/api/function", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = (await response.json()) as UdfResponse;
      const durationMs = performance.now() - started;
      const logLines = answer.logLines ?? [];
      if (answer.status === "success") {
        setResult({ ok: true, value: decoded(answer.value), logLines, durationMs });
      } else if (answer.status === "error") {
        const data =
          answer.errorData === undefined ? "" : `\n${showJson(decoded(answer.errorData))}`;
        setResult({
          ok: false,
          error: `${answer.errorMessage ?? "Failed"}${data}`,
          logLines,
          durationMs,
        });
      } else {
        const error = `${answer.code ?? response.status}: ${answer.message ?? response.statusText}`;
        setResult({ ok: false, error, logLines, durationMs });
      }
    } catch (error) {
      setResult({ ok: false, error: errorText(error), logLines: [], durationMs: null });
    } finally {
      setRunning(false);
    }
  }

  const argsId = `run-args-${fn.identifier}`;
  return (
    <section aria-label="Run function" className="run-panel">
      <h3>Run {fn.identifier}</h3>
      <label htmlFor={argsId}>Arguments (Convex JSON)</label>
      <textarea
        id={argsId}
        rows={5}
        spellCheck={false}
        value={argsText}
        onChange={(event) => setArgsText(event.target.value)}
      />
      <div>
        <button type="button" onClick={() => void run()} disabled={running}>
          {running ? "Running…" : `Run ${fn.kind}`}
        </button>
      </div>
      {result && <RunOutput result={result} />}
    </section>
  );
}

function RunOutput({ result }: { result: RunResult }) {
  return (
    <div className="run-output" role="status" aria-label="Run result">
      <p>
        <strong>{result.ok ? "Success" : "Failure"}</strong>
        {result.durationMs !== null && (
          <span aria-label="Duration"> in {formatDuration(result.durationMs)}</span>
        )}
      </p>
      {result.ok ? (
        <>
          <h4>Result</h4>
          <pre aria-label="Result value">{showJson(result.value)}</pre>
        </>
      ) : (
        <>
          <h4>Error</h4>
          <pre className="error" aria-label="Error">
            {result.error}
          </pre>
        </>
      )}
      {result.durationMs !== null && (
        <>
          <h4>Log lines</h4>
          {result.logLines.length === 0 ? (
            <p className="muted">No console output.</p>
          ) : (
            <pre aria-label="Log lines">{result.logLines.join("\n")}</pre>
          )}
        </>
      )}
    </div>
  );
}
