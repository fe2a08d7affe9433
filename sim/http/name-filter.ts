// `GET /metrics?name[]=a&name[]=b`: only the samples named a or b, with their families' HELP/TYPE lines.
// This is what Prometheus' Python client (prometheus_client's restricted registry) does for vLLM and
// SGLang, so the sidecar's filtered scrapes see the same page here as in production.

/** The `name[]` values of a request URL's query, or undefined when there are none. */
export function requestedNames(url: string): ReadonlySet<string> | undefined {
  const q = url.indexOf("?");
  if (q < 0) return undefined;
  const names = new URLSearchParams(url.slice(q + 1)).getAll("name[]");
  return names.length === 0 ? undefined : new Set(names);
}

/** Keeps the sample lines whose metric name is in `names`; a family's HELP/TYPE only if a sample stays. */
export function restrictToNames(text: string, names: ReadonlySet<string>): string {
  const out: string[] = [];
  let header: string[] = [];
  let headerFamily = "";
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.charCodeAt(0) === 35) {
      const m = /^#[ \t]+(?:HELP|TYPE)[ \t]+(\S+)/.exec(line);
      if (m === null) continue;
      if (m[1] !== headerFamily) {
        header = [];
        headerFamily = m[1]!;
      }
      header.push(line);
      continue;
    }
    const end = line.search(/[{ \t]/);
    if (!names.has(end < 0 ? line : line.slice(0, end))) continue;
    if (header.length > 0) {
      out.push(...header);
      header = [];
    }
    out.push(line);
  }
  return out.length === 0 ? "" : out.join("\n") + "\n";
}
