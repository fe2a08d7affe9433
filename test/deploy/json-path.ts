// Tiny accessors for untyped YAML/JSON trees, so the checks read like the manifests they inspect.
export type Json = Record<string, unknown>;

export function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Value at a dotted path ("spec.template.spec"), or undefined when any step is missing. */
export function at(v: unknown, path: string): unknown {
  let cur = v;
  for (const key of path.split(".")) {
    if (Array.isArray(cur) && /^\d+$/.test(key)) cur = cur[Number(key)];
    else if (isObj(cur)) cur = cur[key];
    else return undefined;
  }
  return cur;
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function objs(v: unknown): Json[] {
  return arr(v).filter(isObj);
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** Values of a CLI flag in an argv list, accepting both "--flag=value" and "--flag value". */
export function flagValues(args: unknown, flag: string): string[] {
  const list = arr(args).map((a) => String(a));
  const out: string[] = [];
  for (let i = 0; i < list.length; i++) {
    if (list[i] === flag && i + 1 < list.length) out.push(list[i + 1]);
    else if (list[i].startsWith(flag + "=")) out.push(list[i].slice(flag.length + 1));
  }
  return out;
}
