// Module resolution hooks for loading the Convex CLI's unbundled modules (component_api.mjs).
//
// The CLI's modules import packages its published bundle inlines (terminal colours,
// spinners, error reporting, command-line parsing...). The code generation templates
// run none of that code, so a package that is not installed resolves to a stand-in
// exporting the names its importer asks for, each an inert object. One is explicit:
// the parser used only to spot `httpRouter` imports throws, so the CLI falls back to
// its regular expression.

import fs from "node:fs";

const PARSER_STANDIN = 'export function parse() { throw new Error("no parser"); }';
const INERT =
  "const inert = new Proxy(function () {}, { get: (_, key) => key === 'then' ? undefined : " +
  "key === Symbol.toPrimitive ? () => '' : inert, apply: () => inert, construct: () => inert });";

function importedNames(parentURL, specifier) {
  let source = "";
  try {
    source = fs.readFileSync(new URL(parentURL), "utf8");
  } catch {
    return [];
  }
  const names = new Set();
  const quoted = JSON.stringify(specifier).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const pattern = new RegExp(`import\\s+(?:[\\w$]+\\s*,\\s*)?\\{([^}]*)\\}\\s*from\\s*${quoted}`, "g");
  for (const match of source.matchAll(pattern)) {
    for (const part of match[1].split(",")) {
      const name = part.trim().split(/\s+as\s+/)[0].trim();
      if (name && name !== "default" && !name.startsWith("type ")) names.add(name);
    }
  }
  return [...names];
}

export async function resolve(specifier, context, next) {
  if (specifier === "@babel/parser") {
    return { url: "data:text/javascript," + encodeURIComponent(PARSER_STANDIN), shortCircuit: true };
  }
  try {
    return await next(specifier, context);
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND" || specifier.startsWith(".") || !context.parentURL) {
      throw error;
    }
    const names = importedNames(context.parentURL, specifier);
    const exports = names.map((name) => ` export const ${name} = inert;`).join("");
    const text = `${INERT} export default inert;${exports}`;
    return { url: "data:text/javascript," + encodeURIComponent(text), shortCircuit: true };
  }
}
