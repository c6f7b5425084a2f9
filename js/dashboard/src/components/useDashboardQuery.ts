// A live dashboard query that reports its error instead of throwing it into the render
// (useQuery throws): screens show a server's refusal as text beside what still works.
import { useConvex } from "convex/react";
import { convexToJson, type Value } from "convex/values";
import { useEffect, useMemo, useState } from "react";
import { dashboardQuery } from "../api";
import { errorText } from "./errors";

export type QueryState<T> = { data: T | undefined; error: string | null; loading: boolean };

export function useDashboardQuery<T>(
  name: string,
  args: Record<string, Value | undefined> | "skip",
): QueryState<T> {
  const client = useConvex();
  const key = args === "skip" ? "skip" : JSON.stringify(convexToJson(clean(args)));
  const [state, setState] = useState<QueryState<T>>({
    data: undefined,
    error: null,
    loading: args !== "skip",
  });
  const stableArgs = useMemo(
    () => (args === "skip" ? null : clean(args)),
    [key],
  );
  useEffect(() => {
    if (stableArgs === null) {
      setState({ data: undefined, error: null, loading: false });
      return;
    }
    setState((previous) => ({ ...previous, loading: true }));
    const watch = client.watchQuery(dashboardQuery(name), stableArgs);
    const read = () => {
      try {
        const value = watch.localQueryResult();
        if (value !== undefined) setState({ data: value as T, error: null, loading: false });
      } catch (error) {
        setState({ data: undefined, error: errorText(error), loading: false });
      }
    };
    read();
    return watch.onUpdate(read);
  }, [client, name, stableArgs]);
  return state;
}

// Arguments without their undefined fields (Convex values have no undefined).
export function clean(args: Record<string, Value | undefined>): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const [k, v] of Object.entries(args)) if (v !== undefined) out[k] = v;
  return out;
}

// Several live queries of one function (pages of a table), each with its own state.
export function useDashboardQueries<T>(
  name: string,
  argsList: Record<string, Value | undefined>[],
): QueryState<T>[] {
  const client = useConvex();
  const key = JSON.stringify(argsList.map((args) => convexToJson(clean(args))));
  const stableList = useMemo(() => argsList.map(clean), [key]);
  const [states, setStates] = useState<QueryState<T>[]>([]);
  useEffect(() => {
    const current: QueryState<T>[] = stableList.map(() => ({
      data: undefined,
      error: null,
      loading: true,
    }));
    setStates([...current]);
    const unsubscribes = stableList.map((args, i) => {
      const watch = client.watchQuery(dashboardQuery(name), args);
      const read = () => {
        try {
          const value = watch.localQueryResult();
          if (value === undefined) return;
          current[i] = { data: value as T, error: null, loading: false };
        } catch (error) {
          current[i] = { data: undefined, error: errorText(error), loading: false };
        }
        setStates([...current]);
      };
      read();
      return watch.onUpdate(read);
    });
    // Kept a moment after a change, so the pages still wanted answer at once from the
    // client's cache instead of being fetched again.
    return () => void setTimeout(() => unsubscribes.forEach((unsubscribe) => unsubscribe()), 2000);
  }, [client, name, stableList]);
  return states.length === argsList.length
    ? states
    : argsList.map(() => ({ data: undefined, error: null, loading: true }));
}
