// Small formatters the ops screens share: times, durations, sizes, JSON.
// Integers from the server may arrive as bigint (Convex int64): every figure goes
// through num() first.

export type Figure = number | bigint;

export function num(value: Figure): number;
export function num(value: Figure | null | undefined): number | null;
export function num(value: Figure | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  return typeof value === "bigint" ? Number(value) : value;
}

export function formatTime(ms: Figure | null | undefined): string {
  const at = num(ms);
  if (at === null) return "—";
  const date = new Date(at);
  return `${date.toLocaleDateString()} ${date.toLocaleTimeString()}`;
}

export function formatDuration(figure: Figure): string {
  const ms = num(figure);
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatBytes(bytes: Figure): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = num(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

// JSON for display: bigints (int64 values) as their digits with an `n`.
export function showJson(value: unknown): string {
  return (
    JSON.stringify(
      value,
      (_key, inner) => (typeof inner === "bigint" ? `${inner.toString()}n` : inner),
      2,
    ) ?? "undefined"
  );
}

// A commit timestamp (decimal string of nanoseconds) as a wall-clock time.
export function formatTs(ts: string): string {
  return formatTime(Number(BigInt(ts) / 1_000_000n));
}

// A server's error without the client's request-id wrapping (shared with the data screens).
export { errorText } from "../../components/errors";

// A function path as users write it: `tasks.js:add` → `tasks:add` (`default` dropped).
export function displayPath(path: string): string {
  const [module, name] = path.split(":");
  const bare = module.replace(/\.js$/, "");
  return name === undefined || name === "default" ? bare : `${bare}:${name}`;
}
