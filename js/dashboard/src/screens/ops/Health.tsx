// The Health screen: the deployment's live figures (`ops:health`), asked every 2 s.
import "./ops.css";
import { useEffect, useState } from "react";
import { useConvex } from "convex/react";
import { Alert } from "../../components/errors";
import { dashboardQuery } from "../../api";
import { errorText, type Figure, formatBytes, formatTs, num } from "./format";
import type { Cluster, Health } from "./types";

const REFRESH_MS = 2000;

function ms(figure: Figure | null): string {
  const value = num(figure);
  return value === null ? "—" : `${value.toFixed(1)} ms`;
}

// Hits as a share of lookups, then what the cache holds.
function queryCache(cache: Health["queryCache"]): string {
  if (cache === null) return "off";
  const hits = num(cache.hits);
  const lookups = hits + num(cache.misses);
  const share = lookups === 0 ? "no lookups yet" : `${((100 * hits) / lookups).toFixed(0)}% hits`;
  return `${share}; ${num(cache.entries)} results, ${formatBytes(cache.bytes)}`;
}

export function HealthScreen() {
  const convex = useConvex();
  const [health, setHealth] = useState<Health | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [updated, setUpdated] = useState<Date | null>(null);

  useEffect(() => {
    let live = true;
    async function refresh() {
      try {
        const figures = (await convex.query(dashboardQuery("ops:health"), {})) as Health;
        if (!live) return;
        setHealth(figures);
        setUpdated(new Date());
        setProblem(null);
      } catch (error) {
        if (live) setProblem(errorText(error));
      }
    }
    void refresh();
    const timer = setInterval(() => void refresh(), REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [convex]);

  return (
    <div className="ops-screen">
      <h1>Health</h1>
      <Alert>{problem}</Alert>
      {health === null ? <p role="status">Loading figures…</p> : <Figures health={health} />}
      {updated && <p className="muted">Updated {updated.toLocaleTimeString()}, every 2 s.</p>}
    </div>
  );
}

function Figures({ health }: { health: Health }) {
  return (
    <>
      <dl className="figures" aria-label="Health figures">
        <Figure label="Commits per second" value={num(health.commitsPerSecond).toFixed(2)} />
        <Figure label="Function latency p50" value={ms(health.functionLatencyMs.p50)} />
        <Figure label="Function latency p99" value={ms(health.functionLatencyMs.p99)} />
        <Figure label="Connections" value={String(health.connections)} />
        <Figure label="Subscriptions" value={String(health.subscriptions)} />
        <Figure
          label="Search indexes"
          value={
            health.search.caughtUp ? "caught up" : `${health.search.lagCommits} commits behind`
          }
        />
        <Figure label="Query cache" value={queryCache(health.queryCache)} />
        <Figure label="Data folder size" value={formatBytes(health.dataFolderBytes)} />
        <Figure
          label="Newest commit"
          value={health.newestTs === "0" ? "—" : formatTs(health.newestTs)}
        />
      </dl>
      {health.cluster && <ClusterNodes cluster={health.cluster} />}
      <h2>Kafka exporters</h2>
      {health.kafka.length === 0 ? (
        <p>No Kafka exporter is configured.</p>
      ) : (
        <dl className="figures" aria-label="Kafka exporters">
          {health.kafka.map((exporter) => (
            <Figure
              key={exporter.name}
              label={exporter.name}
              value={`${exporter.lagCommits} commits behind`}
            />
          ))}
        </dl>
      )}
    </>
  );
}

// `headwater serve --store`: the nodes sharing the deployment, as `headwater status` shows them.
function ClusterNodes({ cluster }: { cluster: Cluster }) {
  return (
    <>
      <h2>Cluster</h2>
      <p>
        Store {cluster.store}; leader:{" "}
        {cluster.leader === null ? "none" : `${cluster.leader.node} at ${cluster.leader.address}`}
      </p>
      <table aria-label="Cluster nodes">
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">Role</th>
            <th scope="col">Address</th>
            <th scope="col">Applied</th>
            <th scope="col">Lag</th>
            <th scope="col">Last seen</th>
          </tr>
        </thead>
        <tbody>
          {cluster.nodes.map((n) => (
            <tr key={n.node}>
              <td>
                {n.node}
                {n.node === cluster.thisNode ? " (this node)" : ""}
              </td>
              <td>{n.role}</td>
              <td>{n.address}</td>
              <td>{formatTs(n.appliedTs)}</td>
              <td>{ms(n.lagMs)}</td>
              <td>{`${(num(n.seenMsAgo) / 1000).toFixed(1)} s ago`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Figure({ label, value }: { label: string; value: string }) {
  return (
    <div className="figure">
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}
