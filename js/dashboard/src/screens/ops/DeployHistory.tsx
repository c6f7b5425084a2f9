// The deploys, newest first: which modules each added, removed or changed, and the
// schema before and after when it changed.
import { Alert } from "../../components/errors";
import { useDashboardQuery } from "../../components/useDashboardQuery";
import { formatTime, num, showJson } from "./format";
import type { Deploy } from "./types";

function ModuleList({ label, modules }: { label: string; modules: string[] }) {
  if (modules.length === 0) return null;
  return (
    <p>
      <strong>{label}:</strong> {modules.join(", ")}
    </p>
  );
}

export function DeployHistory() {
  const { data: deploys, error } = useDashboardQuery<Deploy[]>("ops:deploys", { limit: 20 });
  return (
    <section aria-label="Deploy history" className="deploy-history">
      <h2>Deploy history</h2>
      {error !== null ? (
        <Alert>Could not load the deploy history: {error}</Alert>
      ) : deploys === undefined ? (
        <p role="status">Loading deploys…</p>
      ) : deploys.length === 0 ? (
        <p>No deploys yet.</p>
      ) : (
        <ol className="cards">
          {deploys.map((deploy) => {
            const { added, removed, changed } = deploy.modules;
            const unchanged = added.length + removed.length + changed.length === 0;
            return (
              <li key={deploy.ts} className="card">
                <h3>
                  <time dateTime={new Date(num(deploy.wallTime)).toISOString()}>
                    {formatTime(deploy.wallTime)}
                  </time>
                </h3>
                <ModuleList label="Added" modules={added} />
                <ModuleList label="Removed" modules={removed} />
                <ModuleList label="Changed" modules={changed} />
                {unchanged && <p>No module changed.</p>}
                {deploy.schemaChanged ? (
                  <details>
                    <summary>Schema changed</summary>
                    <div className="side-by-side">
                      <div>
                        <h4>Before</h4>
                        <pre>
                          {deploy.schemaBefore === null
                            ? "(no schema)"
                            : showJson(deploy.schemaBefore)}
                        </pre>
                      </div>
                      <div>
                        <h4>After</h4>
                        <pre>
                          {deploy.schemaAfter === null
                            ? "(no schema)"
                            : showJson(deploy.schemaAfter)}
                        </pre>
                      </div>
                    </div>
                  </details>
                ) : (
                  <p>Schema unchanged.</p>
                )}
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
