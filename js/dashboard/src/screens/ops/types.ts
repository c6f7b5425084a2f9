// The shapes the `_system/dashboard/ops:*` functions answer with.
import type { Figure } from "./format";
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
  wallTime: Figure;
  modules: { added: string[]; removed: string[]; changed: string[] };
  schemaChanged: boolean;
  schemaBefore: unknown;
  schemaAfter: unknown;
};

export type ScheduledJob = {
  id: string;
  name: string;
  args: unknown;
  scheduledTime: Figure;
  state: string | { kind: string; [key: string]: unknown };
  component: string;
  error?: string;
};

export type Cron = {
  name: string;
  schedule: unknown;
  nextRun: Figure | null;
  lastRun: Figure | null;
  functionName: string;
};

export type StoredFile = {
  storageId: string;
  size: Figure;
  contentType: string | null;
  sha256: string;
  creationTime: Figure;
  url: string | null;
};

export type Health = {
  commitsPerSecond: Figure;
  functionLatencyMs: { p50: Figure | null; p99: Figure | null };
  connections: Figure;
  subscriptions: Figure;
  kafka: { name: string; lagCommits: Figure }[];
  search: { caughtUp: boolean; lagCommits: Figure };
  dataFolderBytes: Figure;
  newestTs: string;
  cluster: Cluster | null;
  queryCache: { hits: Figure; misses: Figure; entries: Figure; bytes: Figure } | null;
};

export type Cluster = {
  store: string;
  thisNode: string;
  leader: { node: string; address: string } | null;
  nodes: {
    node: string;
    role: string;
    address: string;
    appliedTs: string;
    lagMs: Figure;
    seenMsAgo: Figure;
  }[];
};
