"""A temporary app that uses components, laid out as an npm project.

The app's ``node_modules`` holds ``convex`` (the installed official package,
linked) and a small hand-written component package, ``counter-pkg``, laid out
as ``@convex-dev`` components are published: ``dist/component/convex.config.js``
(``defineComponent("counter")``), a schema and a functions module beside it, and
``package.json`` ``exports`` naming ``./convex.config``. A second package,
``wrapper-pkg``, is a component that itself uses the counter (a nested component).
"""

from __future__ import annotations

import json
from pathlib import Path

JS_NODE_MODULES = Path(__file__).resolve().parents[1] / "js" / "node_modules"

COUNTER_CONFIG = """import { defineComponent } from "convex/server";
export default defineComponent("counter");
"""

COUNTER_SCHEMA = """import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
});
"""

COUNTER_LIB = """import { mutationGeneric, queryGeneric } from "convex/server";
import { v } from "convex/values";

export const get = queryGeneric({
  args: { name: v.string() },
  returns: v.number(),
  handler: async (ctx, { name }) => {
    const row = await ctx.db
      .query("counters")
      .withIndex("by_name", (q) => q.eq("name", name))
      .unique();
    return row ? row.value : 0;
  },
});

export const add = mutationGeneric({
  args: { name: v.string(), count: v.number() },
  returns: v.null(),
  handler: async (ctx, { name, count }) => {
    const row = await ctx.db
      .query("counters")
      .withIndex("by_name", (q) => q.eq("name", name))
      .unique();
    if (row) {
      await ctx.db.patch(row._id, { value: row.value + count });
    } else {
      await ctx.db.insert("counters", { name, value: count });
    }
    return null;
  },
});
"""

# What a published component's build emits beside its convex.config.js.
CONFIG_TYPES = """import type { ComponentDefinition } from "convex/server";
declare const component: ComponentDefinition<any>;
export default component;
"""

WRAPPER_CONFIG = """import { defineComponent } from "convex/server";
import counter from "counter-pkg/convex.config";
const component = defineComponent("wrapper");
component.use(counter, { name: "inner" });
export default component;
"""

WRAPPER_LIB = """import { queryGeneric } from "convex/server";
export const ping = queryGeneric({ args: {}, handler: async () => "pong" });
"""

APP_CONFIG = """import { defineApp } from "convex/server";
import counter from "counter-pkg/convex.config";
const app = defineApp();
app.use(counter);
export default app;
"""

TWO_COUNTERS_CONFIG = """import { defineApp } from "convex/server";
import counter from "counter-pkg/convex.config";
const app = defineApp();
app.use(counter);
app.use(counter, { name: "second" });
export default app;
"""

NESTED_CONFIG = """import { defineApp } from "convex/server";
import wrapper from "wrapper-pkg/convex.config";
const app = defineApp();
app.use(wrapper);
export default app;
"""

APP_MESSAGES = """import { v } from "convex/values";
import { mutation, query } from "./_generated/server";
import { components } from "./_generated/api";

export const hello = query({ args: {}, handler: async () => "hi" });

export const bump = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }): Promise<number> => {
    await ctx.runMutation(components.counter.lib.add, { name, count: 1 });
    return await ctx.runQuery(components.counter.lib.get, { name });
  },
});
"""

APP_SCHEMA = """import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ notes: defineTable({ text: v.string() }) });
"""

COUNTER_DEFINITION = "../node_modules/counter-pkg/dist/component"
WRAPPER_DEFINITION = "../node_modules/wrapper-pkg/dist/component"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _component_package(modules: Path, name: str, files: dict[str, str], deps=()) -> None:
    package = modules / name
    manifest = {
        "name": name,
        "version": "0.1.0",
        "type": "module",
        "exports": {
            "./convex.config": {
                "types": "./dist/component/convex.config.d.ts",
                "import": "./dist/component/convex.config.js",
            },
            "./convex.config.js": {
                "types": "./dist/component/convex.config.d.ts",
                "import": "./dist/component/convex.config.js",
            },
        },
        "peerDependencies": {"convex": "^1.48.0", **{d: "0.1.0" for d in deps}},
    }
    _write(package / "package.json", json.dumps(manifest, indent=2))
    for file, text in {**files, "convex.config.d.ts": CONFIG_TYPES}.items():
        _write(package / "dist" / "component" / file, text)


def make_component_app(
    root: Path,
    *,
    config: str = APP_CONFIG,
    modules: dict[str, str] | None = None,
) -> Path:
    """Write the project under ``root``; returns its ``convex/`` folder."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "component-app",
        "version": "0.0.0",
        "type": "module",
        "dependencies": {"convex": "1.48.0"},
    }
    _write(root / "package.json", json.dumps(manifest))
    node_modules = root / "node_modules"
    node_modules.mkdir(exist_ok=True)
    (node_modules / "convex").symlink_to(JS_NODE_MODULES / "convex", target_is_directory=True)
    counter = {
        "convex.config.js": COUNTER_CONFIG,
        "schema.js": COUNTER_SCHEMA,
        "lib.js": COUNTER_LIB,
    }
    _component_package(node_modules, "counter-pkg", counter)
    wrapper = {"convex.config.js": WRAPPER_CONFIG, "lib.js": WRAPPER_LIB}
    _component_package(node_modules, "wrapper-pkg", wrapper, deps=("counter-pkg",))
    functions = root / "convex"
    _write(functions / "convex.config.ts", config)
    for name, text in (modules if modules is not None else {"messages.ts": APP_MESSAGES}).items():
        _write(functions / name, text)
    return functions
