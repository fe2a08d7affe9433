// PageTemplate: reading a page through an endpoint's learned template must give exactly what the parser
// gives (extractMetrics without a template), for every page — same structure or not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ENGINE_MAPPINGS, extractMetrics, mappingMetricNames } from "../../sidecar/collector/engines.ts";
import type { EngineMapping } from "../../sidecar/collector/engines.ts";
import { PageTemplate } from "../../sidecar/collector/page-template.ts";
import { restrictToNames } from "../../sim/http/name-filter.ts";
import { mulberry32 } from "../../sim/rng.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/metrics/${name}.txt`, import.meta.url), "utf8");

const CASES: [string, EngineMapping][] = [
  ["vllm", ENGINE_MAPPINGS.vllm],
  ["vllm-legacy", ENGINE_MAPPINGS.vllm],
  ["sglang", ENGINE_MAPPINGS.sglang],
  ["trtllm-serve", ENGINE_MAPPINGS["trtllm-serve"]],
  ["triton-trtllm", ENGINE_MAPPINGS["triton-trtllm"]],
];

/** Each case's full page and its name-filtered page (what the sidecar scrapes from vLLM and SGLang). */
function pages(): { label: string; text: string; mapping: EngineMapping }[] {
  return CASES.flatMap(([name, mapping]) => {
    const full = fixture(name);
    return [
      { label: name, text: full, mapping },
      { label: `${name} filtered`, text: restrictToNames(full, mappingMetricNames(mapping)), mapping },
    ];
  });
}

const VALUES = ["0", "1", "17", "0.5", "1e-3", "-2", "NaN", "+Inf", "-Inf", "3.25e2", "abc", "", "0x10", "7"];

/** A new value (and sometimes a timestamp or trailing blanks) for every sample line, with probability p. */
function changeValues(text: string, r: () => number, p: number): string {
  return text
    .split("\n")
    .map((line) => {
      if (line === "" || line.startsWith("#") || r() >= p) return line;
      const m = /^(.*[}\w:] +)(\S*)(.*)$/.exec(line);
      if (m === null) return line;
      let tail = r() < 0.2 ? ` ${1700000000000 + Math.floor(r() * 1000)}` : "";
      if (r() < 0.1) tail += " ";
      if (r() < 0.03) tail = " 12.5"; // not an integer timestamp
      return m[1]! + VALUES[Math.floor(r() * VALUES.length)]! + tail;
    })
    .join("\n");
}

/** One structural edit: drop, duplicate or alter a line, insert a comment or series, change line endings. */
function changeStructure(text: string, r: () => number): string {
  const lines = text.split("\n");
  const i = Math.floor(r() * lines.length);
  switch (Math.floor(r() * 8)) {
    case 0:
      lines.splice(i, 1);
      break;
    case 1:
      lines.splice(i, 0, lines[i]!);
      break;
    case 2:
      lines[i] = lines[i]!.replace(/="([^"]*)"/, '="$1x"');
      break;
    case 3:
      lines.splice(i, 0, "# a comment");
      break;
    case 4:
      lines.splice(i, 0, 'vllm:num_requests_waiting{model_name="other"} 4');
      break;
    case 5:
      return text.replace(/\n/g, "\r\n");
    case 6:
      lines[i] = lines[i]!.replace(" ", "  ");
      break;
    default:
      lines[i] = lines[i]!.slice(0, Math.floor(lines[i]!.length / 2));
  }
  return lines.join("\n");
}

test("template: same results as the parser over seeded value and structure changes", () => {
  for (const { label, text, mapping } of pages()) {
    const r = mulberry32(label.length * 7919 + 1);
    const template = new PageTemplate();
    let page = text;
    for (let step = 0; step < 400; step++) {
      const roll = r();
      if (roll < 0.1) page = changeStructure(page, r);
      else if (roll < 0.15) page = text; // back to the original structure
      const scraped = changeValues(page, r, roll < 0.5 ? 0.3 : 0.05);
      const expected = extractMetrics(scraped, mapping);
      const got = extractMetrics(scraped, mapping, template);
      assert.deepEqual(got, expected, `${label}, step ${step}:\n${scraped}`);
    }
    // Invalid values and structure changes make many of these pages misses; the rest must be hits.
    assert.ok(template.hits > 50, `${label}: only ${template.hits} template hits`);
  }
});

test("template: endpoints with the same page structure share it and still get their own values", () => {
  // Three endpoints, scraped in a seeded order: two serve one structure (they share a learned shape),
  // the third sometimes drifts to another structure and back. Every result must equal the parser's.
  for (const { label, text, mapping } of pages()) {
    const r = mulberry32(label.length * 31 + 5);
    const endpoints = [0, 1, 2].map(() => ({ template: new PageTemplate(), page: text }));
    for (let step = 0; step < 600; step++) {
      const which = Math.floor(r() * 3);
      const e = endpoints[which]!;
      if (which === 2 && r() < 0.1) e.page = r() < 0.5 ? text : changeStructure(text, r);
      const scraped = changeValues(e.page, r, 0.1);
      assert.deepEqual(
        extractMetrics(scraped, mapping, e.template),
        extractMetrics(scraped, mapping),
        `${label}, step ${step}, endpoint ${which}`,
      );
    }
    assert.ok(endpoints[0]!.template.hits > 50 && endpoints[1]!.template.hits > 50, label);
  }
});

test("template: a page with the learned structure is read through it; a changed one is learned anew", () => {
  const page = restrictToNames(fixture("vllm"), mappingMetricNames(ENGINE_MAPPINGS.vllm));
  const t = new PageTemplate();
  const first = extractMetrics(page, ENGINE_MAPPINGS.vllm, t);
  assert.ok(first.ok);
  assert.equal(t.hits, 0);
  const busier = page.replace(/^(vllm:num_requests_waiting\{[^}]*\}) \S+/m, "$1 42");
  const second = extractMetrics(busier, ENGINE_MAPPINGS.vllm, t);
  assert.ok(second.ok && second.metrics.waiting === 42);
  assert.equal(t.hits, 1);
  // A new series is a different structure: parsed normally (and summed), then learned.
  const more = busier + 'vllm:num_requests_waiting{model_name="b"} 8\n';
  const third = extractMetrics(more, ENGINE_MAPPINGS.vllm, t);
  assert.ok(third.ok && third.metrics.waiting === 50);
  assert.equal(t.misses, 2); // the first page (nothing learned yet) and this one
  assert.ok(extractMetrics(more, ENGINE_MAPPINGS.vllm, t).ok);
  assert.equal(t.hits, 2);
});

test("template: every page that differs only in valid values is a hit", () => {
  for (const { label, text, mapping } of pages()) {
    const r = mulberry32(label.length + 3);
    const t = new PageTemplate();
    for (let i = 0; i < 100; i++) {
      const page = text.replace(
        /^([^#\s][^\s{]*(?:\{[^}]*\})? )[-0-9.e+]+$/gm,
        (_, head: string) => head + String(Math.floor(r() * 1000) / 8),
      );
      assert.deepEqual(extractMetrics(page, mapping, t), extractMetrics(page, mapping), label);
    }
    assert.equal(t.hits, 99, label);
  }
});

test("template: NaN in the primary KV series falls back to the legacy name, as without a template", () => {
  const both =
    "vllm:num_requests_waiting 1\nvllm:num_requests_running 2\n" +
    "vllm:kv_cache_usage_perc 0.25\nvllm:gpu_cache_usage_perc 0.75\n";
  const t = new PageTemplate();
  assert.equal(
    (extractMetrics(both, ENGINE_MAPPINGS.vllm, t) as { metrics: { kvUsage: number } }).metrics.kvUsage,
    0.25,
  );
  const nan = both.replace("0.25", "NaN");
  const got = extractMetrics(nan, ENGINE_MAPPINGS.vllm, t);
  assert.deepEqual(got, extractMetrics(nan, ENGINE_MAPPINGS.vllm));
  assert.ok(got.ok && got.metrics.kvUsage === 0.75);
  // Learned with the fallback now: the next such page is read through the template.
  const hits = t.hits;
  const again = extractMetrics(nan.replace("0.75", "0.5"), ENGINE_MAPPINGS.vllm, t);
  assert.ok(again.ok && again.metrics.kvUsage === 0.5);
  assert.equal(t.hits, hits + 1);
});

test("template: a page whose structure changes every time is learned only now and then", () => {
  const t = new PageTemplate();
  let learnings = 0;
  for (let i = 0; i < 100; i++) {
    if (t.wantsToLearn()) learnings++;
    const page = `vllm:num_requests_waiting{n="${i}"} 1\nvllm:num_requests_running 2\nvllm:kv_cache_usage_perc 0.5\n`;
    assert.ok(extractMetrics(page, ENGINE_MAPPINGS.vllm, t).ok);
  }
  assert.equal(t.hits, 0);
  assert.ok(learnings < 15, `learned ${learnings} times`);
});
