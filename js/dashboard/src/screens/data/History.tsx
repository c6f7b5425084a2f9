// Every version of one document the log holds, newest first, with what changed.
import { Alert } from "../../components/errors";
import { useDashboardQuery } from "../../components/useDashboardQuery";
import { formatTime, JsonBlock, toJsonText } from "../../components/values";

type Change = { path: string; before?: unknown; after?: unknown };
type Version = { ts: string; wallTime: number; value: unknown; diff: Change[] };

function side(value: unknown): string {
  return value === undefined ? "—" : toJsonText(value, 0);
}

export function DocumentHistory(props: { id: string; atTs?: string; onClose: () => void }) {
  const history = useDashboardQuery<Version[]>("data:history", { id: props.id, atTs: props.atTs });
  return (
    <section className="panel" aria-label="Document history">
      <h2>History of {props.id}</h2>
      <button type="button" onClick={props.onClose}>
        Close history
      </button>
      <Alert>{history.error}</Alert>
      {history.data?.length === 0 && <p>The log holds no version of this document.</p>}
      <ol className="versions">
        {history.data?.map((version) => (
          <li key={version.ts}>
            <p>
              <strong>{formatTime(version.wallTime)}</strong>{" "}
              <span className="muted">ts {version.ts}</span>
              {version.value === null && <strong> — deleted</strong>}
            </p>
            {version.diff.length > 0 && (
              <table className="grid diff">
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">Before</th>
                    <th scope="col">After</th>
                  </tr>
                </thead>
                <tbody>
                  {version.diff.map((change) => (
                    <tr key={change.path}>
                      <td>{change.path}</td>
                      <td className="before">{side(change.before)}</td>
                      <td className="after">{side(change.after)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {version.value !== null && (
              <details>
                <summary>Document at this version</summary>
                <JsonBlock value={version.value} />
              </details>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
