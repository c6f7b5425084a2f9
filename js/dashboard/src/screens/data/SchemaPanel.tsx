// A table's schema: its validator, its indexes with their state, the shape inferred
// from its documents and a `schema.ts` snippet to paste.
import { useState } from "react";
import { Alert } from "../../components/errors";
import { useDashboardQuery } from "../../components/useDashboardQuery";

type Index = { name: string; fields: string[]; state: string; staged?: boolean };
type Schema = {
  document: unknown;
  indexes: Index[];
  searchIndexes: unknown[];
  vectorIndexes: unknown[];
  inferred: unknown;
  schemaTs: string;
};

export function SchemaPanel(props: { table: string; component?: string; atTs?: string }) {
  const schema = useDashboardQuery<Schema>("data:schema", {
    table: props.table,
    component: props.component,
    atTs: props.atTs,
  });
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async (text: string) => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied("Copied.");
    } catch {
      setCopied("The browser refused the clipboard: select the text and copy it.");
    }
  };
  const data = schema.data;
  return (
    <section className="panel" aria-label="Schema">
      <h2>Schema</h2>
      <Alert>{schema.error}</Alert>
      {data && (
        <>
          <h3>schema.ts</h3>
          <pre className="json" aria-label="schema.ts">
            {data.schemaTs}
          </pre>
          <button type="button" onClick={() => void copy(data.schemaTs)}>
            Copy schema.ts
          </button>
          {copied && <span className="muted"> {copied}</span>}
          <h3>Indexes</h3>
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Fields</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {data.indexes.map((index) => (
                <tr key={index.name}>
                  <td>{index.name}</td>
                  <td>{index.fields.join(", ")}</td>
                  <td>
                    {index.state}
                    {index.staged ? " (staged)" : ""}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {data.indexes.length === 0 && <p className="muted">No indexes beyond the built-in ones.</p>}
          {(data.searchIndexes.length > 0 || data.vectorIndexes.length > 0) && (
            <details>
              <summary>Search and vector indexes</summary>
              <pre className="json">
                {JSON.stringify([...data.searchIndexes, ...data.vectorIndexes], null, 2)}
              </pre>
            </details>
          )}
          <details>
            <summary>Validator (JSON)</summary>
            {data.document === null ? (
              <p>No validator: any document is accepted.</p>
            ) : (
              <pre className="json">{JSON.stringify(data.document, null, 2)}</pre>
            )}
          </details>
          <details>
            <summary>Shape inferred from the documents (JSON)</summary>
            <pre className="json">{JSON.stringify(data.inferred, null, 2)}</pre>
          </details>
        </>
      )}
    </section>
  );
}
