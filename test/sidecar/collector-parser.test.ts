import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { parsePrometheusText, parseValue, parseValueTail } from "../../sidecar/collector/prom-parser.ts";
import type { Sample } from "../../sidecar/collector/prom-parser.ts";
import { mulberry32 } from "../../sim/rng.ts";

test("parser: HELP and TYPE are recorded, samples keep labels and values", () => {
  const r = parsePrometheusText(
    [
      "# HELP http_requests_total The total number of HTTP requests.\\nSecond line \\\\ done",
      "# TYPE http_requests_total counter",
      'http_requests_total{method="post",code="200"} 1027 1395066363000',
      'http_requests_total{method="post",code="400"}    3 1395066363000',
      "# a free-form comment",
      "up 1",
    ].join("\n"),
    { help: true },
  );
  assert.deepEqual(r.errors, []);
  assert.equal(r.types.get("http_requests_total"), "counter");
  assert.equal(r.help.get("http_requests_total"), "The total number of HTTP requests.\nSecond line \\ done");
  assert.deepEqual(r.samples.get("http_requests_total"), [
    { labels: { method: "post", code: "200" }, value: 1027, timestampMs: 1395066363000 },
    { labels: { method: "post", code: "400" }, value: 3, timestampMs: 1395066363000 },
  ]);
  assert.deepEqual(r.samples.get("up"), [{ labels: {}, value: 1 }]);
});

test("parser: escaped label values", () => {
  const r = parsePrometheusText(
    'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9',
  );
  assert.deepEqual(r.errors, []);
  const [s] = r.samples.get("msdos_file_access_time_seconds")!;
  assert.deepEqual(s!.labels, { path: "C:\\DIR\\FILE.TXT", error: 'Cannot find file:\n"FILE.TXT"' });
  assert.equal(s!.value, 1.458255915e9);
});

test("parser: NaN, +Inf, -Inf, exponents, negative timestamps, trailing comma, spaces, CRLF", () => {
  const r = parsePrometheusText(
    [
      "a NaN",
      "b +Inf",
      "c -Inf",
      "d 1e-3 -1000",
      'e{x="1",} 2',
      'f { x = "1" , y="2" } 3',
      "g 4\r",
      "  h 5",
    ].join("\n"),
  );
  assert.deepEqual(r.errors, []);
  const v = (n: string) => r.samples.get(n)![0]!;
  assert.ok(Number.isNaN(v("a").value));
  assert.equal(v("b").value, Infinity);
  assert.equal(v("c").value, -Infinity);
  assert.deepEqual(v("d"), { labels: {}, value: 0.001, timestampMs: -1000 });
  assert.deepEqual(v("e").labels, { x: "1" });
  assert.deepEqual(v("f").labels, { x: "1", y: "2" });
  assert.equal(v("g").value, 4);
  assert.equal(v("h").value, 5);
});

test("parser: histograms and summaries are skipped whole", () => {
  const r = parsePrometheusText(
    [
      "# TYPE rpc_duration_seconds summary",
      'rpc_duration_seconds{quantile="0.5"} 4773',
      "rpc_duration_seconds_sum 1.7560473e+07",
      "rpc_duration_seconds_count 2693",
      "# TYPE req_latency histogram",
      'req_latency_bucket{le="0.1"} 3',
      'req_latency_bucket{le="+Inf"} 5',
      "req_latency_sum 0.7",
      "req_latency_count 5",
      "# TYPE kept gauge",
      "kept 1",
    ].join("\n"),
  );
  assert.deepEqual([...r.samples.keys()], ["kept"]);
  assert.deepEqual(r.errors, []);
  // Even when asked for by name, a summary's samples are not gauges.
  const named = parsePrometheusText('# TYPE q summary\nq{quantile="0.9"} 1\n', { names: new Set(["q"]) });
  assert.equal(named.samples.size, 0);
});

test("parser: garbage lines are reported with line numbers and the rest still parses", () => {
  const r = parsePrometheusText(
    [
      "good_one 1",
      "{no_name} 1",
      'bad_label{x="unterminated} 1',
      "bad_value abc",
      'bad_escape{x="\\q"} 1',
      "bad_ts 1 12.5",
      "too_many 1 2 3",
      "nospace{} ",
      "# TYPE weird florp",
      "<html>oops</html>",
      "good_two 2",
    ].join("\n"),
  );
  assert.deepEqual([...r.samples.keys()], ["good_one", "good_two"]);
  assert.deepEqual(
    r.errors.map((e) => e.line),
    [2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.match(r.errors[1]!.message, /unterminated/);
  assert.match(r.errors[2]!.message, /invalid value/);
  assert.match(r.errors[3]!.message, /escape/);
  assert.match(r.errors[4]!.message, /timestamp/);
});

test("parser: with a name filter only wanted samples are materialized (and their errors reported)", () => {
  const text = ["a 1", 'b{x="1"} 2', "c 3", "b garbage", "d{broken 4"].join("\n");
  const r = parsePrometheusText(text, { names: new Set(["b"]) });
  assert.deepEqual([...r.samples.keys()], ["b"]);
  assert.equal(r.errors.length, 1, "the unwanted broken line is never looked at");
});

test("parser: error list is bounded but counted", () => {
  const r = parsePrometheusText(Array(500).fill("@@@").join("\n"), { maxErrors: 10 });
  assert.equal(r.errors.length, 10);
  assert.equal(r.errorCount, 500);
});

test("parser: label named __proto__ does not touch the prototype", () => {
  const r = parsePrometheusText('m{__proto__="x"} 1');
  const s = r.samples.get("m")![0]!;
  assert.equal(Object.getPrototypeOf(s.labels), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(s.labels, "__proto__")?.value, "x");
});

test("parseValue rejects what Number() would wrongly accept", () => {
  for (const s of ["", "0x10", "Infinity", "1_000", "abc", " "]) assert.equal(parseValue(s), undefined, s);
  assert.equal(parseValue("-0.5"), -0.5);
  assert.equal(parseValue(".5"), 0.5);
  assert.equal(parseValue("1.7949999871e+09"), 1.7949999871e9);
});

test("parser: the name-filtered fast path agrees with the full line walk on every fixture", () => {
  const dir = new URL("../fixtures/metrics/", import.meta.url);
  for (const f of readdirSync(dir)) {
    const text = readFileSync(new URL(f, dir), "utf8");
    const all = parsePrometheusText(text);
    const names = new Set([...all.samples.keys(), ...all.types.keys(), "absent_metric"]);
    const sel = parsePrometheusText(text, { names });
    for (const name of names) {
      assert.deepEqual(sel.samples.get(name), all.samples.get(name), `${f}: ${name}`);
      assert.equal(sel.types.get(name), all.types.get(name), `${f}: type of ${name}`);
    }
    assert.deepEqual(sel.errors, all.errors, f);
  }
  // Garbage around wanted lines, leading blanks, CRLF and line numbers in errors.
  const text = 'x 1\n  want{a="1"} 2\r\nwant_total 3\n# TYPE want gauge\nwant oops\nwant{a="2"} 4';
  const fast = parsePrometheusText(text, { names: new Set(["want"]) });
  const slow = parsePrometheusText(text);
  assert.deepEqual(fast.samples.get("want"), slow.samples.get("want"));
  assert.deepEqual(fast.errors, [{ line: 5, message: 'want: invalid value "oops"' }]);
  assert.equal(fast.types.get("want"), "gauge");
});

test("parser: reuseSamples hands back the same frozen Sample for a repeated long line, same results", () => {
  const info =
    'vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",num_gpu_blocks="12873"} 1.0';
  const page = (waiting: number) => `vllm:num_requests_waiting{model_name="m"} ${waiting}\n${info}\n`;
  const names = new Set(["vllm:num_requests_waiting", "vllm:cache_config_info"]);
  const a = parsePrometheusText(page(1), { names, reuseSamples: true });
  const b = parsePrometheusText(page(2), { names, reuseSamples: true });
  const plain = parsePrometheusText(page(2), { names });
  assert.deepEqual(b.samples, plain.samples, "same content as without reuse");
  const infoA = a.samples.get("vllm:cache_config_info")![0]!;
  assert.equal(b.samples.get("vllm:cache_config_info")![0], infoA, "long repeated line reused");
  assert.ok(Object.isFrozen(infoA) && Object.isFrozen(infoA.labels), "shared samples cannot be mutated");
  assert.notEqual(
    a.samples.get("vllm:num_requests_waiting")![0],
    b.samples.get("vllm:num_requests_waiting")![0],
    "short live lines are parsed every time",
  );
  assert.equal(b.samples.get("vllm:num_requests_waiting")![0]!.value, 2);
  // A malformed long line is reported every time, never cached.
  const bad = `${info.replace("1.0", "x".repeat(3))}\n`;
  for (let i = 0; i < 2; i++)
    assert.equal(parsePrometheusText(bad, { names, reuseSamples: true }).errorCount, 1);
});

test("parser: the name-filtered fast path agrees with the full line walk on 3,000 mutated pages", () => {
  const random = mulberry32(20261123);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const dir = new URL("../fixtures/metrics/", import.meta.url);
  const pages = readdirSync(dir).map((f) => readFileSync(new URL(f, dir), "utf8"));
  // Line edits a real (or sloppy) exporter produces: odd blanks, CRLF, families split or reordered,
  // comments naming other families, duplicate and garbage lines, TYPE lines moved or changed.
  const edits: ((lines: string[], i: number) => void)[] = [
    (l, i) => (l[i] = `  ${l[i]}`),
    (l, i) => (l[i] = `${l[i]}\r`),
    (l, i) => (l[i] = l[i]!.replace(/^# (HELP|TYPE) /, "#\t$1  ")),
    (l, i) => l.splice(i, 0, l[i]!),
    (l, i) => l.splice(Math.floor(random() * l.length), 0, ...l.splice(i, 1)),
    (l, i) =>
      l.splice(i, 0, `# HELP ${pick(l).split(/[ {]/)[0]} mentions ${pick(l).split(/[ {]/)[2] ?? "x"}`),
    (l, i) => l.splice(i, 0, pick(["", "garbage", "x{", "# just a comment", "name_only"])),
    (l, i) =>
      (l[i] = l[i]!.replace(/ (gauge|counter)$/, pick([" histogram", " summary", " untyped", " bogus"]))),
    (l, i) => (l[i] = l[i]!.replace(/\} /, "}   ")),
  ];
  for (let iter = 0; iter < 3000; iter++) {
    const lines = pick(pages).split("\n");
    for (let m = 1 + Math.floor(random() * 4); m > 0; m--)
      pick(edits)(lines, Math.floor(random() * lines.length));
    const text = lines.join(random() < 0.5 ? "\n" : "\r\n");
    const all = parsePrometheusText(text);
    const names = new Set<string>();
    for (const l of lines) {
      const m = /^[ \t]*(?:#[ \t]+(?:HELP|TYPE)[ \t]+)?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(l);
      if (m) names.add(m[1]!);
    }
    // A family declared twice (invalid) may keep either TYPE; compare only single declarations.
    for (const name of [...names]) {
      const decl = lines.filter((l) => new RegExp(`^[ \\t]*#[ \\t]+TYPE[ \\t]+${name}[ \\t]`).test(l));
      if (decl.length > 1) names.delete(name);
    }
    // Names are families: a histogram's own `_bucket`/`_sum`/`_count` series are not asked for by name.
    for (const name of [...names]) {
      const base = name.replace(/_(bucket|sum|count|created|gsum|gcount)$/, "");
      if (base !== name && text.includes(base)) names.delete(name);
    }
    const sel = parsePrometheusText(text, { names });
    for (const name of names) {
      assert.deepEqual(sel.samples.get(name), all.samples.get(name), `${iter} ${name}:\n${text}`);
      assert.equal(sel.types.get(name), all.types.get(name), `${iter} type of ${name}:\n${text}`);
    }
  }
});

test("parser: a value span reads to exactly the number Number() gives, plain decimals and the rest", () => {
  // Plain decimals take a fast path; every other form goes through parseValue. Both must agree with it.
  const r = mulberry32(424242);
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(r() * 10)).join("");
  const special = ["NaN", "+Inf", "-Inf", "1e3", "-2.5E-7", "0x10", ".", "-", "+", "", "1.2.3", "00.100"];
  for (let t = 0; t < 20_000; t++) {
    let text: string;
    if (t < special.length) text = special[t]!;
    else {
      const sign = r() < 0.2 ? "-" : r() < 0.05 ? "+" : "";
      text = sign + digits(Math.floor(r() * 10)) + (r() < 0.8 ? "." + digits(Math.floor(r() * 13)) : "");
    }
    const line = `m{a="b"} ${text}`;
    const sample: Sample = { labels: {}, value: -12345 };
    const error = parseValueTail(line, 9, line.length, sample);
    const expected = parseValue(text);
    if (expected === undefined) assert.ok(error !== undefined, JSON.stringify(text));
    else {
      assert.equal(error, undefined, JSON.stringify(text));
      assert.ok(Object.is(sample.value, expected), `${text}: ${sample.value} vs ${expected}`);
    }
  }
});
