// Applies EnvoyPatchPolicy-style JSON patches to a JSON document, so a test can run our patch policy against the
// listener Envoy Gateway generates and check the result. RFC 6902 operations (add, remove, replace, copy; a
// missing parent is an error, as RFC 6902 says), plus the jsonPath subset our policies use (RFC 9535): $, .name,
// ..name, [n] and [?(@.name=='value')]. Envoy Gateway resolves a jsonPath to JSON pointers, appends "path" to each
// and applies the operation at every one (github.com/envoyproxy/gateway internal/utils/jsonpatch/patch.go).

type Step = string | number;
interface Match {
  value: unknown;
  path: Step[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function children(m: Match): Match[] {
  if (Array.isArray(m.value)) return m.value.map((value, i) => ({ value, path: [...m.path, i] }));
  if (isRecord(m.value))
    return Object.entries(m.value).map(([k, value]) => ({ value, path: [...m.path, k] }));
  return [];
}

function descendantsAndSelf(m: Match): Match[] {
  return [m, ...children(m).flatMap(descendantsAndSelf)];
}

function member(m: Match, name: string): Match[] {
  return isRecord(m.value) && name in m.value ? [{ value: m.value[name], path: [...m.path, name] }] : [];
}

const TOKEN = /^(\.\.|\.)([A-Za-z_][\w-]*)|^\[(\d+)\]|^\[\?\(@\.([A-Za-z_]\w*)\s*==\s*'([^']*)'\)\]/;

/** JSON pointers ("/a/0/b") of every node a jsonPath selects. Throws on syntax outside the supported subset. */
export function jsonPathToPointers(doc: unknown, jsonPath: string): string[] {
  if (!jsonPath.startsWith("$")) throw new Error(`jsonPath must start with $: ${jsonPath}`);
  let rest = jsonPath.slice(1);
  let current: Match[] = [{ value: doc, path: [] }];
  while (rest.length > 0) {
    const t = TOKEN.exec(rest);
    if (!t) throw new Error(`unsupported jsonPath syntax at "${rest}" in ${jsonPath}`);
    rest = rest.slice(t[0].length);
    if (t[1] === "..") current = current.flatMap(descendantsAndSelf).flatMap((m) => member(m, t[2]));
    else if (t[1] === ".") current = current.flatMap((m) => member(m, t[2]));
    else if (t[3] !== undefined)
      current = current.flatMap((m) =>
        Array.isArray(m.value) && Number(t[3]) < m.value.length
          ? [{ value: m.value[Number(t[3])], path: [...m.path, Number(t[3])] }]
          : [],
      );
    else current = current.flatMap(children).filter((c) => isRecord(c.value) && c.value[t[4]] === t[5]);
  }
  return current.map((m) =>
    m.path.map((s) => "/" + String(s).replaceAll("~", "~0").replaceAll("/", "~1")).join(""),
  );
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new Error(`JSON pointer must start with /: ${pointer}`);
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** The container holding the pointer's last step, and that step; throws when the parent is missing. */
function parentOf(doc: unknown, pointer: string): { parent: unknown; key: string } {
  const steps = parsePointer(pointer);
  if (steps.length === 0) throw new Error("operations on the whole document are not supported");
  let cur = doc;
  for (const s of steps.slice(0, -1)) {
    if (Array.isArray(cur) && /^\d+$/.test(s) && Number(s) < cur.length) cur = cur[Number(s)];
    else if (isRecord(cur) && s in cur) cur = cur[s];
    else throw new Error(`path ${pointer}: missing parent at "${s}"`);
  }
  return { parent: cur, key: steps[steps.length - 1] };
}

function getAt(doc: unknown, pointer: string): unknown {
  const { parent, key } = parentOf(doc, pointer);
  if (Array.isArray(parent) && /^\d+$/.test(key) && Number(key) < parent.length) return parent[Number(key)];
  if (isRecord(parent) && key in parent) return parent[key];
  throw new Error(`path ${pointer}: no value`);
}

function add(doc: unknown, pointer: string, value: unknown): void {
  const { parent, key } = parentOf(doc, pointer);
  if (Array.isArray(parent)) {
    const i = key === "-" ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new Error(`path ${pointer}: bad index`);
    parent.splice(i, 0, value);
  } else if (isRecord(parent)) parent[key] = value;
  else throw new Error(`path ${pointer}: parent is not a container`);
}

function remove(doc: unknown, pointer: string): void {
  getAt(doc, pointer);
  const { parent, key } = parentOf(doc, pointer);
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete (parent as Record<string, unknown>)[key];
}

export interface PatchOperation {
  op: string;
  path?: string;
  jsonPath?: string;
  from?: string;
  value?: unknown;
}

/** Applies one operation in place; a jsonPath that selects nothing is an error, as in Envoy Gateway. */
export function applyOperation(doc: unknown, o: PatchOperation): void {
  const pointers =
    o.jsonPath !== undefined
      ? jsonPathToPointers(doc, o.jsonPath).map((p) => p + (o.path ?? ""))
      : [o.path ?? ""];
  if (o.jsonPath !== undefined && pointers.length === 0)
    throw new Error(`jsonPath ${o.jsonPath} selects nothing`);
  for (const p of pointers) {
    if (o.op === "add") add(doc, p, structuredClone(o.value));
    else if (o.op === "remove") remove(doc, p);
    else if (o.op === "replace") {
      remove(doc, p);
      add(doc, p, structuredClone(o.value));
    } else if (o.op === "copy") add(doc, p, structuredClone(getAt(doc, String(o.from))));
    else throw new Error(`unsupported op ${o.op}`);
  }
}
