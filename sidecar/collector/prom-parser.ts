// Parser for the Prometheus text exposition format (version 0.0.4, plus OpenMetrics' `# EOF`).
// Built for the scrape loop: callers pass the metric names they want, and only those samples are
// materialized; every other line is skipped after reading its name. Histogram and summary families are
// skipped whole. A malformed line is reported and skipped; the rest of the text still parses.

export interface Sample {
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the line carries one. */
  timestampMs?: number;
}

export interface ParseError {
  line: number;
  message: string;
}

export interface ParseResult {
  /** Samples by metric name, in text order. Only names that were asked for (or all, without a filter). */
  samples: Map<string, Sample[]>;
  /** TYPE per family name (only for families that were kept). */
  types: Map<string, string>;
  /** HELP per family name (only when `help` is requested). */
  help: Map<string, string>;
  errors: ParseError[];
}

export interface ParseOptions {
  /** Only these metric names are materialized; omit to keep every counter/gauge/untyped sample. */
  names?: ReadonlySet<string>;
  /** Collect HELP text (off by default: the scrape loop never needs it). */
  help?: boolean;
  /** Stop recording errors after this many (the count still rises in `errorCount`). */
  maxErrors?: number;
  /**
   * Return the same (frozen) Sample for a long sample line seen before, instead of parsing it again. Info-style
   * series (vLLM's cache_config_info, lora_requests_info) repeat byte for byte on every scrape and carry most
   * of a filtered page's labels. Only with `names`.
   */
  reuseSamples?: boolean;
  /**
   * Filled with every materialized sample and where its value begins in the text (after the blank that
   * ends the name or label set). Only with `names`; turns `reuseSamples` off (the samples are fresh objects
   * the caller may update in place). Used by PageTemplate.
   */
  positions?: SamplePositions;
}

/** Materialized samples and the text offsets of their values, in the order they were parsed. */
export interface SamplePositions {
  samples: Sample[];
  valueStarts: number[];
}

const SKIPPED_TYPES = new Set(["histogram", "summary", "gaugehistogram"]);
const KNOWN_TYPES = new Set([
  "counter",
  "gauge",
  "histogram",
  "summary",
  "untyped",
  "gaugehistogram",
  "stateset",
  "info",
  "unknown",
]);
const SUFFIXES = ["_bucket", "_sum", "_count", "_created", "_gsum", "_gcount"];

function isNameStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58; // a-z A-Z _ :
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}

/** Parses a sample value: Go float syntax as Prometheus writes it, including NaN and ±Inf. */
export function parseValue(s: string): number | undefined {
  switch (s) {
    case "NaN":
      return NaN;
    case "+Inf":
    case "Inf":
      return Infinity;
    case "-Inf":
      return -Infinity;
  }
  if (s.length === 0) return undefined;
  const c = s.charCodeAt(0);
  // Number() would accept "0x1F", "Infinity" and "" — none are exposition-format floats.
  if (!((c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46)) return undefined;
  if (s.length > 1 && (s.charCodeAt(1) === 120 || s.charCodeAt(1) === 88)) return undefined;
  const v = Number(s);
  return Number.isNaN(v) ? undefined : v;
}

/** 10^0 … 10^22: the powers of ten a double holds exactly. */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, e) => Number(`1e${e}`));

/**
 * text[i, end) read as a plain decimal (`-12`, `0.0026`, `1.0`, `.5`), or undefined for anything else
 * (exponents, NaN/Inf, more than 15 digits): then parseValue decides. Exact: with at most 15 digits the
 * digits form an integer a double holds exactly, and dividing it by an exact power of ten rounds once, to
 * the same double Number() gives. This reads the live gauges of every page without a string per value.
 */
function plainDecimal(text: string, i: number, end: number): number | undefined {
  let negative = false;
  if (i < end) {
    const c = text.charCodeAt(i);
    if (c === 45 || c === 43) {
      negative = c === 45;
      i++;
    }
  }
  let digits = 0;
  let fraction = -1; // digits after the point, once there is one
  let m = 0;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
      if (fraction >= 0) fraction++;
    } else if (c === 46 && fraction < 0) fraction = 0;
    else return undefined;
  }
  if (digits === 0 || digits > 15) return undefined;
  const v = fraction > 0 ? m / EXACT_POWERS_OF_TEN[fraction]! : m;
  return negative ? -v : v;
}

export function parsePrometheusText(
  text: string,
  opts: ParseOptions = {},
): ParseResult & { errorCount: number } {
  const wanted = opts.names;
  const maxErrors = opts.maxErrors ?? 100;
  if (wanted !== undefined && !opts.help)
    return parseSelected(text, wanted, maxErrors, opts.reuseSamples ?? false, opts.positions);
  const samples = new Map<string, Sample[]>();
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const errors: ParseError[] = [];
  let errorCount = 0;
  // Families declared histogram/summary: their samples (name, name_bucket, …) are skipped.
  const skippedFamilies = new Set<string>();

  let pos = 0;
  let lineNo = 0;
  const report = (message: string) => {
    errorCount++;
    if (errors.length < maxErrors) errors.push({ line: lineNo, message });
  };
  const n = text.length;
  while (pos < n) {
    lineNo++;
    let end = text.indexOf("\n", pos);
    if (end < 0) end = n;
    const lineStart = pos;
    pos = end + 1;
    let lineEnd = end;
    if (lineEnd > lineStart && text.charCodeAt(lineEnd - 1) === 13) lineEnd--; // tolerate CRLF
    let i = lineStart;
    while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    if (i === lineEnd) continue;

    if (text.charCodeAt(i) === 35) {
      // "# HELP name text" / "# TYPE name type"; other comments are ignored.
      const line = text.slice(i, lineEnd);
      // [^\n] rather than ".": a stray CR after the type is trimmed like a blank, as in the fast path.
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:[ \t]+([^\n]*))?$/.exec(line);
      if (m === null) continue;
      const family = m[2]!;
      if (m[1] === "TYPE") {
        const type = (m[3] ?? "").trim();
        if (!KNOWN_TYPES.has(type)) {
          report(`unknown metric type ${JSON.stringify(type)} for ${family}`);
          continue;
        }
        if (SKIPPED_TYPES.has(type)) skippedFamilies.add(family);
        if (wanted === undefined || wanted.has(family)) types.set(family, type);
      } else if (opts.help && (wanted === undefined || wanted.has(family))) {
        help.set(family, unescapeHelp(m[3] ?? ""));
      }
      continue;
    }

    // Metric name.
    const nameStart = i;
    if (!isNameStart(text.charCodeAt(i))) {
      report("expected a metric name");
      continue;
    }
    i++;
    while (i < lineEnd && isNameChar(text.charCodeAt(i))) i++;
    const name = text.slice(nameStart, i);
    if (
      wanted !== undefined
        ? !wanted.has(name) || skippedFamilies.has(name)
        : inSkippedFamily(name, skippedFamilies)
    ) {
      continue;
    }

    const sample = parseSampleRest(text, i, lineEnd);
    if (typeof sample === "string") {
      report(`${name}: ${sample}`);
      continue;
    }
    let list = samples.get(name);
    if (list === undefined) samples.set(name, (list = []));
    list.push(sample);
  }
  return { samples, types, help, errors, errorCount };
}

/** Parses what follows a metric name up to lineEnd: optional labels, value, optional timestamp. */
function parseSampleRest(
  text: string,
  i: number,
  lineEnd: number,
  positions?: SamplePositions,
): Sample | string {
  // Labels (blanks may separate them from the name).
  const labels: Record<string, string> = {};
  let j = i;
  while (j < lineEnd && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9)) j++;
  if (j < lineEnd && text.charCodeAt(j) === 123) {
    const r = parseLabels(text, j + 1, lineEnd, labels);
    if (typeof r === "string") return r;
    i = r;
  }
  // Value and optional timestamp, separated by blanks.
  if (i >= lineEnd || (text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9))
    return "expected a space before the value";
  const sample: Sample = { labels, value: 0 };
  const error = parseValueTail(text, i + 1, lineEnd, sample);
  if (error !== undefined) return error;
  if (positions !== undefined) {
    positions.samples.push(sample);
    positions.valueStarts.push(i + 1);
  }
  return sample;
}

/**
 * Parses `[blanks] value [blanks timestamp] [blanks]` from i to lineEnd into `out`; returns an error
 * message instead when the text is not that. PageTemplate calls it on the value span of a known line.
 */
export function parseValueTail(text: string, i: number, lineEnd: number, out: Sample): string | undefined {
  while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
  let k = i;
  while (k < lineEnd && text.charCodeAt(k) !== 32 && text.charCodeAt(k) !== 9) k++;
  let value = plainDecimal(text, i, k);
  if (value === undefined) {
    const valueText = text.slice(i, k);
    value = parseValue(valueText);
    if (value === undefined) return `invalid value ${JSON.stringify(valueText)}`;
  }
  while (k < lineEnd && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
  if (k === lineEnd) {
    out.value = value;
    if (out.timestampMs !== undefined) delete out.timestampMs;
    return undefined;
  }
  let m = k;
  while (m < lineEnd && text.charCodeAt(m) !== 32 && text.charCodeAt(m) !== 9) m++;
  const tsText = text.slice(k, m);
  while (m < lineEnd && (text.charCodeAt(m) === 32 || text.charCodeAt(m) === 9)) m++;
  if (m !== lineEnd) return "unexpected text after the timestamp";
  const ts = Number(tsText);
  if (!/^-?[0-9]+$/.test(tsText) || !Number.isSafeInteger(ts))
    return `invalid timestamp ${JSON.stringify(tsText)}`;
  out.value = value;
  out.timestampMs = ts;
  return undefined;
}

function inSkippedFamily(name: string, families: Set<string>): boolean {
  if (families.size === 0) return false;
  if (families.has(name)) return true;
  for (const s of SUFFIXES) {
    if (name.endsWith(s) && families.has(name.slice(0, -s.length))) return true;
  }
  return false;
}

/** Parses `name="value",…}` starting after `{`; returns the index after `}` or an error message. */
function parseLabels(text: string, i: number, end: number, out: Record<string, string>): number | string {
  for (;;) {
    while (i < end && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    if (i >= end) return "unterminated label set";
    if (text.charCodeAt(i) === 125) return i + 1; // "}" (also after a trailing comma)
    const ks = i;
    if (!isNameStart(text.charCodeAt(i)) || text.charCodeAt(i) === 58) return "invalid label name";
    i++;
    while (i < end && isNameChar(text.charCodeAt(i)) && text.charCodeAt(i) !== 58) i++;
    const key = text.slice(ks, i);
    while (i < end && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    if (text.charCodeAt(i) !== 61) return `expected "=" after label ${key}`;
    i++;
    while (i < end && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    if (text.charCodeAt(i) !== 34) return `expected a quoted value for label ${key}`;
    i++;
    // Fast path: no escapes.
    let value = "";
    let chunk = i;
    for (;;) {
      if (i >= end) return `unterminated value for label ${key}`;
      const c = text.charCodeAt(i);
      if (c === 34) break;
      if (c === 92) {
        value += text.slice(chunk, i);
        const e = text.charCodeAt(i + 1);
        if (e === 92) value += "\\";
        else if (e === 34) value += '"';
        else if (e === 110) value += "\n";
        else return `invalid escape in value of label ${key}`;
        i += 2;
        chunk = i;
        continue;
      }
      i++;
    }
    value += text.slice(chunk, i);
    i++;
    if (Object.hasOwn(out, key)) return `duplicate label ${key}`;
    // A plain assignment of "__proto__" would replace the object's prototype instead of adding a key.
    if (key === "__proto__")
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
    while (i < end && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    const c = text.charCodeAt(i);
    if (c === 44) i++;
    else if (c !== 125) return "expected , or } in label set";
  }
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

// Lines shorter than this are mostly live gauges whose value changes every scrape: hashing them is wasted.
const REUSE_MIN_LINE = 100;
// Bounded by clearing: a pool of 1000 pods repeats a handful of distinct info lines.
const REUSE_MAX_LINES = 8192;
const reusableSamples = new Map<string, Sample>();

/** State of one parseSelected() call. A class rather than closures: the loop runs 20,000 times a second,
 *  and per-call closures (which tsx also wraps to keep their names) cost more than the parsing itself. */
class SelectedParse {
  readonly samples = new Map<string, Sample[]>();
  readonly types = new Map<string, string>();
  readonly errors: ParseError[] = [];
  errorCount = 0;
  constructor(
    readonly text: string,
    readonly maxErrors: number,
    readonly reuse: boolean,
    readonly positions: SamplePositions | undefined,
  ) {}

  report(at: number, message: string): void {
    this.errorCount++;
    if (this.errors.length < this.maxErrors) this.errors.push({ line: lineOf(this.text, at), message });
  }

  /** Parses the sample line whose name `name` starts at k; returns the index of the next line. */
  sampleLine(name: string, k: number): number {
    const text = this.text;
    const n = text.length;
    const from = k + name.length;
    let lineEnd = text.indexOf("\n", from);
    if (lineEnd < 0) lineEnd = n;
    const next = lineEnd + 1;
    if (lineEnd > from && text.charCodeAt(lineEnd - 1) === 13) lineEnd--;
    let sample: Sample | string;
    if (this.reuse && this.positions === undefined && lineEnd - k >= REUSE_MIN_LINE) {
      const line = text.slice(k, lineEnd);
      const seen = reusableSamples.get(line);
      if (seen !== undefined) sample = seen;
      else {
        sample = parseSampleRest(text, from, lineEnd);
        if (typeof sample !== "string") {
          if (reusableSamples.size >= REUSE_MAX_LINES) reusableSamples.clear();
          Object.freeze(sample.labels);
          reusableSamples.set(line, Object.freeze(sample));
        }
      }
    } else sample = parseSampleRest(text, from, lineEnd, this.positions);
    if (typeof sample === "string") this.report(k, `${name}: ${sample}`);
    else {
      let list = this.samples.get(name);
      if (list === undefined) this.samples.set(name, (list = []));
      list.push(sample);
    }
    return next;
  }

  startsSample(name: string, k: number): boolean {
    const text = this.text;
    if (!text.startsWith(name, k)) return false;
    const after = k + name.length < text.length ? text.charCodeAt(k + name.length) : 10;
    return after === 123 || isBlank(after);
  }

  /** Records the type named after `name` at k (a TYPE line); true if the family is skipped whole. */
  recordType(name: string, k: number): boolean {
    const text = this.text;
    let lineEnd = text.indexOf("\n", k);
    if (lineEnd < 0) lineEnd = text.length;
    const type = text.slice(k + name.length, lineEnd).trim();
    if (!KNOWN_TYPES.has(type)) {
      this.report(k, `unknown metric type ${JSON.stringify(type)} for ${name}`);
      return false;
    }
    this.types.set(name, type);
    return SKIPPED_TYPES.has(type);
  }

  /** Every group of `name`'s samples, and its TYPE (a histogram/summary family is skipped). */
  find(name: string): void {
    const text = this.text;
    const n = text.length;
    // A substring search finds the "# TYPE" line (which comes first) and the first sample line; the
    // rest of the family's group is then read line by line.
    let from = 0;
    for (;;) {
      const k = text.indexOf(name, from);
      if (k < 0) return;
      from = k + name.length;
      const after = from < n ? text.charCodeAt(from) : 10;
      if (after !== 123 && !isBlank(after)) continue; // a longer name, e.g. name_bucket
      let b = k - 1;
      while (b >= 0 && isBlank(text.charCodeAt(b))) b--;
      if (b >= 0 && text.charCodeAt(b) !== 10) {
        if (b !== k - 1 && isTypeComment(text, b) && this.recordType(name, k)) return;
        continue; // not at the start of a line
      }
      // First sample line of the group, then the lines that follow it.
      let at = this.sampleLine(name, k);
      for (;;) {
        while (at < n && isBlank(text.charCodeAt(at))) at++;
        if (at >= n) break;
        const c = text.charCodeAt(at);
        if (c === 35 || c === 10 || c === 13) {
          // Comments and empty lines may sit inside a group, even (against the format) this family's TYPE.
          if (c === 35) {
            const k = typeCommentName(text, at);
            if (k >= 0 && this.startsSample(name, k) && this.recordType(name, k)) return;
          }
          const e = text.indexOf("\n", at);
          at = e < 0 ? n : e + 1;
          continue;
        }
        if (!this.startsSample(name, at)) break;
        at = this.sampleLine(name, at);
      }
      from = at; // keep searching: a server may (against the format) split a family into several groups
    }
  }
}

/**
 * The scrape loop's fast path: instead of walking every line, find each wanted name at the start of a line
 * with the engine's native substring search. Same results as the line walk for those names (text order,
 * histogram/summary families skipped, errors for malformed wanted lines only).
 */
function parseSelected(
  text: string,
  wanted: ReadonlySet<string>,
  maxErrors: number,
  reuse: boolean,
  positions: SamplePositions | undefined,
): ParseResult & { errorCount: number } {
  const p = new SelectedParse(text, maxErrors, reuse, positions);
  for (const name of wanted) p.find(name);
  const { samples, types, errors, errorCount } = p;
  return { samples, types, help: new Map(), errors, errorCount };
}

/** True if the text ending at index `b` (inclusive) is a line "# TYPE" followed by blanks. */
function isTypeComment(text: string, b: number): boolean {
  if (b < 4 || !text.startsWith("TYPE", b - 3)) return false;
  let c = b - 4;
  if (!isBlank(text.charCodeAt(c))) return false;
  while (c >= 0 && isBlank(text.charCodeAt(c))) c--;
  if (c < 0 || text.charCodeAt(c) !== 35) return false;
  c--;
  while (c >= 0 && isBlank(text.charCodeAt(c))) c--; // blanks may precede the "#", as in the line walk
  return c < 0 || text.charCodeAt(c) === 10;
}

/** For a comment line starting with "#" at `at`: where the name of a "# TYPE name …" begins, else -1. */
function typeCommentName(text: string, at: number): number {
  let j = at + 1;
  if (!isBlank(text.charCodeAt(j))) return -1;
  while (isBlank(text.charCodeAt(j))) j++;
  if (!text.startsWith("TYPE", j) || !isBlank(text.charCodeAt(j + 4))) return -1;
  j += 4;
  while (isBlank(text.charCodeAt(j))) j++;
  return j;
}

function lineOf(text: string, at: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < at; i = text.indexOf("\n", i + 1)) line++;
  return line;
}
