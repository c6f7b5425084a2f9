// The shapes the `_system/dashboard/ops:*` functions answer with.
import type { ValidatorJson } from "./validators";

export type FunctionInfo = {
  module: string;
  name: string;
  identifier: string;
  kind: "query" | "mutation" | "action" | "httpAction" | string;
  visibility: "public" | "internal";
  args: ValidatorJson | null;
  returns: ValidatorJson | null;
  component: string;
};

export type Deploy = {
  ts: string;
  wallTime: number;
  modules: { added: string[]; removed: string[]; changed: string[] };
  schemaChanged: boolean;
  schemaBefore: unknown;
  schemaAfter: unknown;
};

export type ScheduledJob = {
  id: string;
  name: string;
  args: unknown;
  scheduledTime: number;
  state: string | { kind: string; [key: string]: unknown };
  component: string;
};

export type Cron = {
  name: string;
  schedule: unknown;
  nextRun: number | null;
  lastRun: number | null;
  functionName: string;
};

export type StoredFile = {
  storageId: string;
  size: number;
  contentType: string | null;
  sha256: string;
  creationTime: number;
  url: string | null;
};

export type Health = {
  commitsPerSecond: number;
  functionLatencyMs: { p50: number | null; p99: number | null };
  connections: number;
  subscriptions: number;
  kafka: { name: string; lagCommits: number }[];
  search: { caughtUp: boolean; lagCommits: number };
  dataFolderBytes: number;
  newestTs: string;
};
