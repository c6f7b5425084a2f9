// Documents as Convex JSON text (bigints as {"$integer": ...}, bytes as {"$bytes": ...}),
// and text typed by the user read back into Convex values.
import { convexToJson, jsonToConvex, type Value } from "convex/values";

export function toJsonText(value: unknown, indent = 2): string {
  return JSON.stringify(convexToJson(value as Value), null, indent);
}

// The text of one JSON value typed by the user; a clear message when it is not JSON.
export function parseJsonText(text: string, what: string): Value {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${(error as Error).message}`);
  }
  return jsonToConvex(parsed as never);
}

// A short one-line preview of a field for table cells.
export function preview(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value.length > 80 ? `${value.slice(0, 77)}…` : value;
  const text = JSON.stringify(convexToJson(value as Value));
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

export function JsonBlock({ value, label }: { value: unknown; label?: string }) {
  return (
    <pre className="json" aria-label={label}>
      {toJsonText(value)}
    </pre>
  );
}

// Commit timestamps (decimal ns strings) as local date and time, to the millisecond.
export function tsToDate(ts: string): Date {
  return new Date(Number(BigInt(ts) / 1_000_000n));
}

export function formatTime(ms: number | Date): string {
  const d = typeof ms === "number" ? new Date(ms) : ms;
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

export const SYSTEM_FIELDS = ["_id", "_creationTime"];

export function withoutSystemFields(doc: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!SYSTEM_FIELDS.includes(k)) out[k] = v;
  return out;
}
