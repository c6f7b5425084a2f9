// Small formatters the ops screens share: times, durations, sizes, JSON.

export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const date = new Date(ms);
  return `${date.toLocaleDateString()} ${date.toLocaleTimeString()}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

// JSON for display: bigints (int64 values) as their digits with an `n`.
export function showJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, inner) => (typeof inner === "bigint" ? `${inner.toString()}n` : inner),
    2,
  ) ?? "undefined";
}

// A commit timestamp (decimal string of nanoseconds) as a wall-clock time.
export function formatTs(ts: string): string {
  return formatTime(Number(BigInt(ts) / 1_000_000n));
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
