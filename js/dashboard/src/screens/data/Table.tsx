// One table's documents, page by page and live: sort by an index, filter, expand a row
// to its Convex JSON, insert, edit and delete (checked against the schema), each
// document's history, and the table's schema.
import { useConvex } from "convex/react";
import { useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { dashboardMutation } from "../../api";
import { Alert, errorText } from "../../components/errors";
import { readable, TimeTravelControl, useTimeTravel } from "../../components/TimeTravel";
import { useDashboardQueries, useDashboardQuery } from "../../components/useDashboardQuery";
import { toJsonText, withoutSystemFields } from "../../components/values";
import { DocumentEditor } from "./DocumentEditor";
import { DocumentRows, type Doc } from "./DocumentRows";
import { FilterBuilder, type Filter } from "./Filters";
import { DocumentHistory } from "./History";
import { SchemaPanel } from "./SchemaPanel";

const PAGE_SIZE = 50;

type Page = { page: Doc[]; continueCursor: string | null; isDone: boolean; ts: string };
type SchemaIndexes = { indexes: { name: string; fields: string[] }[] };

export function TableScreen() {
  const table = decodeURIComponent(useParams().table ?? "");
  const component = useSearchParams()[0].get("component") ?? undefined;
  const travel = useTimeTravel();
  const [index, setIndex] = useState("by_creation_time");
  const [order, setOrder] = useState<"asc" | "desc">("desc");
  const [filters, setFilters] = useState<Filter[]>([]);
  const [showSchema, setShowSchema] = useState(false);
  const [historyOf, setHistoryOf] = useState<string | null>(null);
  const [inserting, setInserting] = useState(false);
  const [editing, setEditing] = useState<Doc | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const client = useConvex();

  const view = JSON.stringify([table, component, index, order, filters, travel.atTs]);
  const [cursors, setCursors] = useState<{ view: string; list: (string | null)[] }>({
    view,
    list: [null],
  });
  const list = cursors.view === view ? cursors.list : [null];
  const ok = readable(travel);
  const pages = useDashboardQueries<Page>(
    "data:page",
    ok
      ? list.map((cursor) => ({
          table,
          component,
          atTs: travel.atTs,
          index,
          order,
          filters: filters as never,
          cursor,
          numItems: PAGE_SIZE,
        }))
      : [],
  );
  const schema = useDashboardQuery<SchemaIndexes>(
    "data:schema",
    ok ? { table, component, atTs: travel.atTs } : "skip",
  );
  const docs = useMemo(() => pages.flatMap((p) => p.data?.page ?? []), [pages]);
  const last = pages[pages.length - 1]?.data;
  const pageError = pages.find((p) => p.error)?.error ?? null;
  const past = travel.atTs !== undefined;

  const run = async (name: string, args: Record<string, unknown>) => {
    try {
      return await client.mutation(dashboardMutation(name), args as never);
    } catch (e) {
      throw new Error(errorText(e));
    }
  };
  const remove = async (doc: Doc) => {
    setActionError(null);
    try {
      await run("data:delete", { ids: [doc._id] });
    } catch (e) {
      setActionError((e as Error).message);
    }
  };

  return (
    <>
      <p className="crumbs">
        <Link to={travel.atTs ? `/data?ts=${travel.atTs}` : "/data"}>Data</Link>
        {component ? ` / ${component}` : ""} /
      </p>
      <h1>{table}</h1>
      <TimeTravelControl travel={travel} />
      <div className="toolbar">
        <label>
          <span>Sort by index</span>
          <select value={index} onChange={(e) => setIndex(e.target.value)}>
            <option value="by_creation_time">by_creation_time</option>
            {schema.data?.indexes
              .filter((i) => i.name !== "by_creation_time" && i.name !== "by_id")
              .map((i) => (
                <option key={i.name} value={i.name}>
                  {i.name} ({i.fields.join(", ")})
                </option>
              ))}
          </select>
        </label>
        <label>
          <span>Order</span>
          <select value={order} onChange={(e) => setOrder(e.target.value as "asc" | "desc")}>
            <option value="desc">Descending</option>
            <option value="asc">Ascending</option>
          </select>
        </label>
        <button type="button" onClick={() => setInserting(true)} disabled={past || inserting}>
          Add document
        </button>
        <button type="button" aria-expanded={showSchema} onClick={() => setShowSchema(!showSchema)}>
          {showSchema ? "Hide schema" : "Schema"}
        </button>
      </div>
      {past && <p className="muted">Reading the past: editing is off until you go Live.</p>}
      <FilterBuilder onApply={setFilters} />
      {inserting && (
        <DocumentEditor
          title="New document"
          initial={"{\n  \n}"}
          submitLabel="Insert"
          onCancel={() => setInserting(false)}
          onSave={async (document) => {
            await run("data:insert", { table, component, document });
            setInserting(false);
          }}
        />
      )}
      {editing && (
        <DocumentEditor
          key={editing._id}
          title={`Edit ${editing._id}`}
          initial={toJsonText(withoutSystemFields(editing))}
          submitLabel="Save"
          onCancel={() => setEditing(null)}
          onSave={async (document) => {
            await run("data:replace", { id: editing._id, document });
            setEditing(null);
          }}
        />
      )}
      <Alert>{pageError ?? actionError}</Alert>
      {showSchema && ok && (
        <SchemaPanel table={table} component={component} atTs={travel.atTs} />
      )}
      {historyOf && (
        <DocumentHistory id={historyOf} atTs={travel.atTs} onClose={() => setHistoryOf(null)} />
      )}
      {ok && !pageError && pages[0]?.data === undefined && <p className="muted">Loading…</p>}
      {ok && !pageError && pages[0]?.data !== undefined && (
        <DocumentRows
          docs={docs}
          readOnly={past}
          onEdit={setEditing}
          onDelete={remove}
          onHistory={setHistoryOf}
        />
      )}
      {ok && last && !last.isDone && (
        <button
          type="button"
          onClick={() => setCursors({ view, list: [...list, last.continueCursor] })}
        >
          Load more
        </button>
      )}
      {ok && last?.isDone && <p className="muted">{docs.length} documents, all loaded.</p>}
    </>
  );
}
