// The filter builder: conditions on (dotted) fields, values typed as Convex JSON.
import { useState, type FormEvent } from "react";
import type { Value } from "convex/values";
import { Alert } from "../../components/errors";
import { parseJsonText } from "../../components/values";

export type Filter = { field: string; op: string; value?: Value };

const OPS: [string, string][] = [
  ["eq", "="],
  ["neq", "≠"],
  ["lt", "<"],
  ["lte", "≤"],
  ["gt", ">"],
  ["gte", "≥"],
  ["exists", "exists"],
  ["notExists", "does not exist"],
];

type Row = { field: string; op: string; value: string };

export function FilterBuilder({ onApply }: { onApply: (filters: Filter[]) => void }) {
  const [rows, setRows] = useState<Row[]>([]);
  const [error, setError] = useState<string | null>(null);
  const update = (i: number, change: Partial<Row>) =>
    setRows(rows.map((row, j) => (i === j ? { ...row, ...change } : row)));
  const apply = (event: FormEvent) => {
    event.preventDefault();
    try {
      const filters = rows.map((row, i) => {
        if (!row.field.trim()) throw new Error(`Filter ${i + 1} needs a field.`);
        if (row.op === "exists" || row.op === "notExists") return { field: row.field.trim(), op: row.op };
        return {
          field: row.field.trim(),
          op: row.op,
          value: parseJsonText(row.value, `The value of filter ${i + 1}`),
        };
      });
      setError(null);
      onApply(filters);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <form className="filters" onSubmit={apply} aria-label="Filters">
      {rows.map((row, i) => (
        <div className="filter-row" key={i}>
          <label>
            <span>Field</span>
            <input
              value={row.field}
              placeholder="e.g. author or address.city"
              onChange={(e) => update(i, { field: e.target.value })}
            />
          </label>
          <label>
            <span>Operator</span>
            <select value={row.op} onChange={(e) => update(i, { op: e.target.value })}>
              {OPS.map(([op, text]) => (
                <option key={op} value={op}>
                  {text}
                </option>
              ))}
            </select>
          </label>
          {row.op !== "exists" && row.op !== "notExists" && (
            <label>
              <span>Value (Convex JSON)</span>
              <input
                value={row.value}
                placeholder='e.g. "ada" or 3 or {"$integer": "AQAAAAAAAAA="}'
                onChange={(e) => update(i, { value: e.target.value })}
              />
            </label>
          )}
          <button type="button" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
            Remove filter
          </button>
        </div>
      ))}
      <div className="actions">
        <button type="button" onClick={() => setRows([...rows, { field: "", op: "eq", value: "" }])}>
          Add filter
        </button>
        <button type="submit">Apply filters</button>
      </div>
      <Alert>{error}</Alert>
    </form>
  );
}
