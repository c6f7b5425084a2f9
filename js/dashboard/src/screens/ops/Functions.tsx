// The Functions screen: every deployed function by module (kind, visibility, argument
// validator), a panel to run the selected one, and the history of deploys.
import "./ops.css";
import { useMemo, useState } from "react";
import { Alert } from "../../components/errors";
import { useDashboardQuery } from "../../components/useDashboardQuery";
import { DeployHistory } from "./DeployHistory";
import { RunFunction } from "./RunFunction";
import type { FunctionInfo } from "./types";
import { validatorText } from "./validators";

function moduleKey(fn: FunctionInfo): string {
  const module = fn.module.replace(/\.js$/, "");
  return fn.component ? `${fn.component}/${module}` : module;
}

function byModule(functions: FunctionInfo[]): [string, FunctionInfo[]][] {
  const groups = new Map<string, FunctionInfo[]>();
  for (const fn of functions) {
    const key = moduleKey(fn);
    groups.set(key, [...(groups.get(key) ?? []), fn]);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}

export function FunctionsScreen() {
  return (
    <div className="ops-screen">
      <h1>Functions</h1>
      <FunctionsScreenBody />
      <DeployHistory />
    </div>
  );
}

function FunctionsScreenBody() {
  const { data: functions, error } = useDashboardQuery<FunctionInfo[]>("ops:functions", {});
  const [selected, setSelected] = useState<string | null>(null);
  const [filter, setFilter] = useState("");
  const shown = useMemo(
    () =>
      (functions ?? []).filter((fn) => fn.identifier.toLowerCase().includes(filter.toLowerCase())),
    [functions, filter],
  );
  const chosen = functions?.find((fn) => `${fn.component}|${fn.identifier}` === selected) ?? null;

  return (
    <>
      {error !== null ? (
        <Alert>Could not load the functions: {error}</Alert>
      ) : functions === undefined ? (
        <p role="status">Loading functions…</p>
      ) : functions.length === 0 ? (
        <p>No functions are deployed yet. Push some with `npx convex deploy`.</p>
      ) : (
        <div className="split">
          <section aria-label="Function list" className="function-list">
            <label htmlFor="function-filter">Filter functions</label>
            <input
              id="function-filter"
              type="search"
              value={filter}
              onChange={(event) => setFilter(event.target.value)}
            />
            {byModule(shown).map(([module, fns]) => (
              <div key={module}>
                <h2 className="module-name">{module}</h2>
                <ul>
                  {fns.map((fn) => {
                    const key = `${fn.component}|${fn.identifier}`;
                    return (
                      <li key={key}>
                        <button
                          type="button"
                          className="function-button"
                          aria-pressed={key === selected}
                          onClick={() => setSelected(key)}
                        >
                          <span>{fn.name}</span>
                          <span className={`badge kind-${fn.kind}`}>{fn.kind}</span>
                          {fn.visibility === "internal" && <span className="badge">internal</span>}
                        </button>
                      </li>
                    );
                  })}
                </ul>
              </div>
            ))}
          </section>
          <section aria-label="Function detail" className="function-detail">
            {chosen === null ? (
              <p>Select a function to see its arguments and run it.</p>
            ) : (
              <FunctionDetail key={selected} fn={chosen} />
            )}
          </section>
        </div>
      )}
    </>
  );
}

function FunctionDetail({ fn }: { fn: FunctionInfo }) {
  return (
    <>
      <h2>{fn.identifier}</h2>
      <dl className="facts">
        <dt>Kind</dt>
        <dd>{fn.kind}</dd>
        <dt>Visibility</dt>
        <dd>{fn.visibility}</dd>
        {fn.component && (
          <>
            <dt>Component</dt>
            <dd>{fn.component}</dd>
          </>
        )}
      </dl>
      <h3>Arguments</h3>
      <pre aria-label="Argument validator">{validatorText(fn.args)}</pre>
      {fn.returns && (
        <>
          <h3>Returns</h3>
          <pre aria-label="Return validator">{validatorText(fn.returns)}</pre>
        </>
      )}
      {fn.kind === "httpAction" ? (
        <p>HTTP actions run through their routes, not from here.</p>
      ) : (
        <RunFunction fn={fn} />
      )}
    </>
  );
}
