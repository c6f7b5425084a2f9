// A function's argument validator (Convex's validator JSON) as readable `v.*` text.

type FieldJson = { fieldType: ValidatorJson; optional?: boolean };
export type ValidatorJson = {
  type: string;
  value?: unknown;
  tableName?: string;
  keys?: ValidatorJson;
  values?: FieldJson;
};

const SIMPLE: Record<string, string> = {
  null: "v.null()",
  number: "v.float64()",
  bigint: "v.int64()",
  boolean: "v.boolean()",
  string: "v.string()",
  bytes: "v.bytes()",
  any: "v.any()",
};

export function validatorText(validator: ValidatorJson | null | undefined): string {
  if (validator === null || validator === undefined) return "any arguments (no validator)";
  if (validator.type === "object")
    return objectText(validator.value as Record<string, FieldJson>, 0);
  return show(validator, 0);
}

function show(validator: ValidatorJson, depth: number): string {
  const simple = SIMPLE[validator.type];
  if (simple) return simple;
  switch (validator.type) {
    case "id":
      return `v.id(${JSON.stringify(validator.tableName ?? "")})`;
    case "literal":
      return `v.literal(${JSON.stringify(validator.value)})`;
    case "array":
      return `v.array(${show(validator.value as ValidatorJson, depth)})`;
    case "union":
      return `v.union(${(validator.value as ValidatorJson[]).map((x) => show(x, depth)).join(", ")})`;
    case "record":
      return `v.record(${show(validator.keys as ValidatorJson, depth)}, ${field(validator.values as FieldJson, depth)})`;
    case "object":
      return `v.object(${objectText(validator.value as Record<string, FieldJson>, depth)})`;
    default:
      return JSON.stringify(validator);
  }
}

function field(inner: FieldJson, depth: number): string {
  const text = show(inner.fieldType, depth + 1);
  return inner.optional ? `v.optional(${text})` : text;
}

function objectText(fields: Record<string, FieldJson>, depth: number): string {
  const names = Object.keys(fields);
  if (names.length === 0) return "{}";
  const pad = "  ".repeat(depth + 1);
  const lines = names.map((name) => `${pad}${name}: ${field(fields[name], depth)},`);
  return `{\n${lines.join("\n")}\n${"  ".repeat(depth)}}`;
}

// Arguments to start from, as Convex JSON: every required field with a plain value of
// its type (optional fields left out), so a run needs only the values changed.
export function exampleArgs(validator: ValidatorJson | null | undefined): unknown {
  if (validator === null || validator === undefined) return {};
  return example(validator);
}

function example(validator: ValidatorJson): unknown {
  switch (validator.type) {
    case "string":
    case "id":
      return "";
    case "number":
      return 0;
    case "bigint":
      return { $integer: "AAAAAAAAAAA=" }; // 0n
    case "boolean":
      return false;
    case "bytes":
      return { $bytes: "" };
    case "literal":
      return validator.value;
    case "array":
      return [];
    case "record":
      return {};
    case "union": {
      const options = validator.value as ValidatorJson[];
      return options.length > 0 ? example(options[0]) : null;
    }
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [name, field] of Object.entries(validator.value as Record<string, FieldJson>)) {
        if (!field.optional) out[name] = example(field.fieldType);
      }
      return out;
    }
    default:
      return null;
  }
}
