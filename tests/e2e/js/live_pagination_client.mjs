// The official npm client's paginated query (what usePaginatedQuery runs) against a
// real `headwater serve`, while documents are inserted and deleted at page boundaries.
//
//   node live_pagination_client.mjs <deployment url> <js dir with node_modules>
//
// For each order (asc, desc) a ConvexClient holds items:list with
// onPaginatedUpdate_experimental (PaginatedQueryClient: one subscription per page,
// journals kept and re-sent on reconnect, pages split at splitCursor). After every
// change it prints {"step", "order", "ranks", "all"}: the ranks the client shows and
// the whole query result (ConvexHttpClient). Halfway it prints {"step":"restart"} and
// waits for a line on stdin (the test restarts the server on the same port and data),
// so the pages come back through Add messages that carry their journals.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const [url, jsDir] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexClient, ConvexHttpClient } = require("convex/browser");
const { anyApi } = require("convex/server");

const STEP_TIMEOUT_MS = 20000;
const PAGE_SIZE = 2;
const options = { skipConvexDeploymentUrlCheck: true, logger: false };
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const httpClient = new ConvexHttpClient(url, options);
// Across the restart a kept-alive connection to the old server fails once: retry.
async function retried(call) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 50 || !String(error?.message).includes("fetch failed")) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
const http = {
  query: (fn, args) => retried(() => httpClient.query(fn, args)),
  mutation: (fn, args) => retried(() => httpClient.mutation(fn, args)),
};

class Reader {
  constructor(order) {
    this.order = order;
    this.client = new ConvexClient(url, options);
    this.latest = null;
    this.waiter = null;
    this.client.onPaginatedUpdate_experimental(
      anyApi.items.list,
      { order },
      { initialNumItems: PAGE_SIZE },
      (result) => {
        this.latest = result;
        if (this.waiter !== null && this.waiter.check()) this.waiter.resolve();
      },
      (error) => say({ step: "error", error: String(error) }),
    );
  }

  ranks() {
    return (this.latest?.results ?? []).map((item) => item.rank);
  }

  // The pages the client holds now (an internal of the pinned client version).
  pageCount() {
    const queries = this.client.paginatedClient.paginatedQuerySet;
    return [...queries.values()][0]?.pageKeys.length ?? null;
  }

  // Checked on every update and every 50 ms (a reconnect may bring no change).
  waitFor(description, check) {
    if (this.latest !== null && check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const poll = setInterval(() => this.latest !== null && check() && done(), 50);
      const timer = setTimeout(() => {
        clearInterval(poll);
        this.waiter = null;
        reject(new Error(`${this.order}: timed out waiting for ${description}; shown ${this.ranks()}; ${JSON.stringify(this.client.connectionState())}`));
      }, STEP_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.waiter = null;
        resolve();
      };
      this.waiter = { check, resolve: done };
    });
  }

  async record(step) {
    const all = (await http.query(anyApi.items.all, { order: this.order })).map((i) => i.rank);
    say({ step, order: this.order, ranks: this.ranks(), all, pages: this.pageCount() });
  }

  async insertAndSee(step, ranks) {
    await http.mutation(anyApi.items.insert, { ranks });
    await this.waitFor(`${ranks} to show`, () => ranks.every((r) => this.ranks().includes(r)));
    await this.record(step);
  }

  async loadAll() {
    for (let i = 0; i < 50 && this.latest.status !== "Exhausted"; i++) {
      const before = this.ranks().length;
      if (this.latest.status === "CanLoadMore") this.latest.loadMore(PAGE_SIZE);
      await this.waitFor("a page to load", () =>
        this.latest.status !== "LoadingMore" &&
        (this.ranks().length > before || this.latest.status === "Exhausted"));
    }
    await this.record("exhausted");
  }
}

const between = (a, b, n = 1) =>
  Array.from({ length: n }, (_, i) => a + ((b - a) * (i + 1)) / (n + 1));

async function firstSteps(reader) {
  await reader.waitFor("page 1", () => reader.ranks().length === PAGE_SIZE);
  reader.latest.loadMore(PAGE_SIZE);
  await reader.waitFor("page 2", () => reader.ranks().length === 2 * PAGE_SIZE);
  await reader.record("two pages");
  // Inside page 1: page 1 must grow to its old end, not slide over page 2's start.
  let shown = reader.ranks();
  await reader.insertAndSee("insert in page 1", between(shown[0], shown[1]));
  // A new subscriber to page 1 (no journal) pages afresh: PAGE_SIZE items, not the
  // grown page the first client holds under its journal.
  const fresh = new ConvexClient(url, options);
  const pageArgs = { order: reader.order, paginationOpts: { cursor: null, numItems: PAGE_SIZE, id: -1 } };
  const freshPage = await new Promise((resolve) => fresh.onUpdate(anyApi.items.list, pageArgs, resolve));
  say({ step: "fresh page 1", order: reader.order, size: freshPage.page.length });
  await fresh.close();
  // Page 1's last document (the boundary) deleted: nothing from page 2 may repeat.
  const boundary = reader.ranks()[PAGE_SIZE];
  await http.mutation(anyApi.items.removeRank, { rank: boundary });
  await reader.waitFor("the boundary to go", () => !reader.ranks().includes(boundary));
  await reader.record("delete boundary");
  // Four more inside page 1: over twice the page size, the client splits it.
  shown = reader.ranks();
  await reader.insertAndSee("insert four in page 1", between(shown[0], shown[1], 4));
  await reader.waitFor("page 1 to split", () => reader.pageCount() > 2);
  await reader.record("split");
  // Inside the last page: its journal must survive the restart below.
  shown = reader.ranks();
  await reader.insertAndSee("insert in last page", between(shown.at(-2), shown.at(-1)));
}

async function main() {
  await http.mutation(anyApi.items.insert, { ranks: [10, 20, 30, 40, 50, 60, 70, 80] });
  const readers = [new Reader("asc"), new Reader("desc")];
  for (const reader of readers) await firstSteps(reader);
  say({ step: "restart" });
  await stdinLines.next();
  for (const reader of readers) {
    const before = reader.ranks();
    // Reconnected: the pages re-ran with the journals the client sent in its Adds.
    await reader.waitFor("the reconnect", () => reader.client.connectionState().isWebSocketConnected);
    const shown = reader.ranks();
    await reader.insertAndSee("after reconnect", between(shown.at(-2), shown.at(-1)));
    say({ step: "kept", order: reader.order, before });
  }
  for (const reader of readers) await reader.loadAll();
  let refused = null;
  try {
    await http.query(anyApi.items.twoPages, {});
  } catch (error) {
    refused = String(error.message);
  }
  say({ step: "two pages refused", message: refused });
  for (const reader of readers) await reader.client.close();
  say({ step: "done" });
  process.exit(0);
}

main().catch((error) => {
  say({ step: "error", error: `${error?.stack ?? error} cause: ${error?.cause}` });
  process.exit(1);
});
