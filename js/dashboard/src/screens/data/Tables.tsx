// The tables of the deployment with their document counts, grouped by component.
import { Link } from "react-router-dom";
import { Alert } from "../../components/errors";
import { readable, TimeTravelControl, useTimeTravel } from "../../components/TimeTravel";
import { useDashboardQuery } from "../../components/useDashboardQuery";

export type TableInfo = {
  name: string;
  component: string;
  table: string;
  count: number;
  hasSchema: boolean;
};

export function tableLink(table: TableInfo | { table: string; component: string }, ts?: string) {
  const params = new URLSearchParams();
  if (table.component) params.set("component", table.component);
  if (ts) params.set("ts", ts);
  const query = params.toString();
  return `/data/${encodeURIComponent(table.table)}${query ? `?${query}` : ""}`;
}

export function TablesScreen() {
  const travel = useTimeTravel();
  const tables = useDashboardQuery<TableInfo[]>(
    "data:tables",
    readable(travel) ? { atTs: travel.atTs } : "skip",
  );
  const groups = new Map<string, TableInfo[]>();
  for (const table of tables.data ?? []) {
    const list = groups.get(table.component) ?? [];
    list.push(table);
    groups.set(table.component, list);
  }
  return (
    <>
      <h1>Data</h1>
      <TimeTravelControl travel={travel} />
      <Alert>{tables.error}</Alert>
      {tables.data !== undefined && tables.data.length === 0 && (
        <p>No tables yet: a table appears with its first document or in the schema.</p>
      )}
      {[...groups.entries()].map(([component, list]) => (
        <section key={component} aria-label={component ? `Component ${component}` : "App tables"}>
          <h2>{component ? `Component ${component}` : "App"}</h2>
          <table className="grid tables">
            <thead>
              <tr>
                <th scope="col">Table</th>
                <th scope="col">Documents</th>
                <th scope="col">Schema</th>
              </tr>
            </thead>
            <tbody>
              {list.map((table) => (
                <tr key={table.name}>
                  <td>
                    <Link to={tableLink(table, travel.atTs)}>{table.table}</Link>
                  </td>
                  <td className="number">{table.count}</td>
                  <td>{table.hasSchema ? "validated" : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </>
  );
}
