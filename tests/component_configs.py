"""Bundled ``convex.config.js`` modules written by hand, in the shape the CLI pushes them."""

from __future__ import annotations

import json

from udf.bundler import BundledModule
from udf.component_definitions import dependency_import

# What defineApp()/defineComponent(name) from convex/server record, written small: the
# CLI bundles the real ones into each convex.config.js.
DEFINE = """
const define = (kind, name) => {
  const children = [];
  const mounts = {};
  return {
    use(definition, options = {}) {
      const childName = options.name ?? definition.defaultName;
      const path = definition.componentDefinitionPath;
      children.push({ name: childName, path, args: [], env: null });
      if (options.httpPrefix) mounts[options.httpPrefix] = "_reference/childComponent/" + childName;
      return {};
    },
    export() {
      return {
        definitionType:
          kind === "app" ? { type: "app" } : { type: "childComponent", name, args: [] },
        childComponents: children,
        httpMounts: mounts,
        exports: { type: "branch", branch: [] },
      };
    },
  };
};
"""


def config(kind, name="", uses=()):
    """A bundled convex.config.js: imports of other definitions as the CLI rewrites them."""
    lines = []
    for i, (path, _options) in enumerate(uses):
        lines.append(f'import dep{i} from "./{dependency_import(path)}";')
    lines.append(DEFINE)
    lines.append(f"const def = define({json.dumps(kind)}, {json.dumps(name)});")
    for i, (_path, options) in enumerate(uses):
        lines.append(f"def.use(dep{i}, {json.dumps(options)});")
    lines.append("export default def;")
    return BundledModule("convex.config.js", "\n".join(lines), None)
