// The documents as a table: one column per top-level field, a row expands to the whole
// document as Convex JSON; edit, history and delete (asked twice) per row.
import { Fragment, useState } from "react";
import { formatTime, JsonBlock, preview } from "../../components/values";

export type Doc = { _id: string; _creationTime: number; [field: string]: unknown };

function columns(docs: Doc[]): string[] {
  const seen = new Set<string>();
  for (const doc of docs) for (const field of Object.keys(doc)) seen.add(field);
  seen.delete("_id");
  seen.delete("_creationTime");
  return ["_id", ...[...seen].sort(), "_creationTime"];
}

export function DocumentRows(props: {
  docs: Doc[];
  readOnly: boolean;
  onEdit: (doc: Doc) => void;
  onDelete: (doc: Doc) => Promise<void>;
  onHistory: (id: string) => void;
}) {
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [confirming, setConfirming] = useState<string | null>(null);
  const fields = columns(props.docs);
  if (props.docs.length === 0) return <p>No documents.</p>;
  const toggle = (id: string) => {
    const next = new Set(expanded);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setExpanded(next);
  };
  return (
    <table className="grid documents" aria-label="Documents">
      <thead>
        <tr>
          <th scope="col">
            <span className="visually-hidden">Actions</span>
          </th>
          {fields.map((field) => (
            <th scope="col" key={field}>
              {field}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.docs.map((doc) => (
          <Fragment key={doc._id}>
            <tr data-id={doc._id}>
              <td className="row-actions">
                <button
                  type="button"
                  aria-expanded={expanded.has(doc._id)}
                  aria-label={`Expand ${doc._id}`}
                  onClick={() => toggle(doc._id)}
                >
                  {expanded.has(doc._id) ? "▾" : "▸"}
                </button>
                <button type="button" onClick={() => props.onHistory(doc._id)}>
                  History
                </button>
                {!props.readOnly && (
                  <>
                    <button type="button" onClick={() => props.onEdit(doc)}>
                      Edit
                    </button>
                    {confirming === doc._id ? (
                      <>
                        <button
                          type="button"
                          className="danger"
                          onClick={() => {
                            setConfirming(null);
                            void props.onDelete(doc);
                          }}
                        >
                          Confirm delete
                        </button>
                        <button type="button" onClick={() => setConfirming(null)}>
                          Keep
                        </button>
                      </>
                    ) : (
                      <button type="button" onClick={() => setConfirming(doc._id)}>
                        Delete
                      </button>
                    )}
                  </>
                )}
              </td>
              {fields.map((field) => (
                <td key={field}>
                  {field === "_creationTime"
                    ? formatTime(doc._creationTime)
                    : preview(doc[field])}
                </td>
              ))}
            </tr>
            {expanded.has(doc._id) && (
              <tr className="expanded">
                <td colSpan={fields.length + 1}>
                  <JsonBlock value={doc} label={`Document ${doc._id}`} />
                </td>
              </tr>
            )}
          </Fragment>
        ))}
      </tbody>
    </table>
  );
}
