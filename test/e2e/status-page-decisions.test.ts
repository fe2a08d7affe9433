// `npm start` and `npm run load` as a user runs them, watched two ways (issue 19, "Done when"):
// - the gateway admin's /stats/prometheus counts exactly the requests the load script printed, per served
//   model, with a populated decision-time histogram and picks per endpoint that add up to the routed requests;
// - the sidecar's status page in Chromium (Debian's, through playwright-core) shows what the picker decided —
//   read from that same admin, as `npm start` wires it — with charts holding data and the food-review
//   split against its 70/30 weights. The page is saved as test-output/status-page-decisions.png (and, with
//   EPP_UPDATE_DOCS_IMG=1, as docs/img/status-page.png for the README).
// The counts are checked on every machine; without Chromium (outside CI) only the page part is skipped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { chromium, type Page } from "playwright-core";
import { startLocalStack } from "../support/local-stack.ts";
import { findOnPath, requirePrerequisite, skipUnlessCI } from "../support/prereq.ts";

const CHROMIUM = findOnPath("chromium", "chromium-browser");
const noChromium = CHROMIUM
  ? undefined
  : "Chromium: no chromium on PATH (apt-get install chromium; .ci/run does)";
const LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"];

/** `npm run load`'s table under `title`: name → count. */
function loadTable(out: string, title: string): Map<string, number> {
  const m = new Map<string, number>();
  const start = out.indexOf(`\n${title}`);
  assert.ok(start >= 0, `no "${title}" in the load output:\n${out}`);
  for (const line of out
    .slice(start + 1)
    .split("\n")
    .slice(1)) {
    const r = /^ {2}(.+?)\s+(\d+)$/.exec(line);
    if (r === null) break;
    m.set(r[1]!, Number(r[2]));
  }
  return m;
}

/** Every sample of `name` in a Prometheus page, with its labels. */
function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf("}");
    const labels: Record<string, string> = {};
    for (const [, k, v] of line.slice(name.length + 1, close).matchAll(/(\w+)="([^"]*)"/g)) labels[k!] = v!;
    out.push({ labels, value: Number(line.slice(close + 2)) });
  }
  return out;
}

/** Sum of `name`'s samples whose labels pass `keep`, grouped by `key` (the growth since `before` when given). */
function grouped(
  text: string,
  name: string,
  key: (l: Record<string, string>) => string | null,
): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of samples(text, name)) {
    const k = key(s.labels);
    if (k !== null) m.set(k, (m.get(k) ?? 0) + s.value);
  }
  return m;
}

function growth(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const m = new Map<string, number>();
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) > 0) m.set(k, v - (before.get(k) ?? 0));
  return m;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

async function pointsOf(page: Page, chart: string): Promise<number[]> {
  return page
    .locator(`[data-chart=${chart}]`)
    .evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.points)));
}

test(
  "npm start + npm run load: the admin's counts equal the load's, and the status page charts the decisions",
  { timeout: 300_000 },
  async (t) => {
    // The counts are checked everywhere; the page only where Chromium is (under CI it must be).
    const browserMissing = skipUnlessCI(noChromium);
    if (browserMissing === undefined) requirePrerequisite(noChromium);
    else t.diagnostic(`the status page part is skipped: ${browserMissing}`);
    const stack = await startLocalStack({ pods: 2 });
    const browser = browserMissing
      ? undefined
      : await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: LAUNCH_ARGS });
    try {
      const admin = /admin\s+(http:\/\/127\.0\.0\.1:\d+)\/stats\/prometheus/.exec(stack.output())?.[1];
      assert.ok(admin, `npm start prints the admin's address:\n${stack.output()}`);
      const page = await browser?.newPage({ viewport: { width: 1280, height: 900 } });
      await page?.goto(`http://127.0.0.1:${stack.ports.sidecarPort}/`);
      await page?.waitForSelector("text=Pool default/local-pool");

      // npm start sent one request through the gateway to see it serve: the load's counts are the growth.
      const before = await (await fetch(`${admin}/stats/prometheus`)).text();
      // A short load while the page watches: a few seconds of steps for the charts.
      const load = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "scripts/load.ts",
          "--url",
          `http://127.0.0.1:${stack.ports.port}`,
          "--requests",
          "80",
          "--concurrency",
          "4",
          "--quiet",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      let err = "";
      load.stdout.on("data", (c: Buffer) => (out += c.toString()));
      load.stderr.on("data", (c: Buffer) => (err += c.toString()));
      const code = await new Promise<number | null>((r) => load.on("exit", r));
      assert.equal(code, 0, err);

      // The admin's counters, against what the load printed.
      const text = await (await fetch(`${admin}/stats/prometheus`)).text();
      const statuses = loadTable(out, "by status (429 = shed under saturation)");
      const served = loadTable(out, "by served model");
      // Routed requests by the model that served them (the target model, or the request's own when none).
      const byServed = (t: string) =>
        grouped(t, "epp_wasm_requests_total", (l) =>
          l.outcome !== "routed"
            ? null
            : l.target_model_name === "__none__"
              ? l.model_name!
              : l.target_model_name!,
        );
      assert.deepEqual(
        [...growth(byServed(text), byServed(before))].sort(),
        [...served].sort(),
        `admin:\n${text}\nload:\n${out}`,
      );
      const all = (t: string) => grouped(t, "inference_objective_request_total", () => "all");
      const total = sum(statuses);
      assert.equal(
        sum(growth(all(text), all(before))),
        total,
        "every request the load sent was counted once",
      );
      const shed = (t: string) =>
        grouped(t, "epp_wasm_requests_total", (l) => (l.outcome === "shed" ? "shed" : null));
      assert.equal(sum(growth(shed(text), shed(before))), statuses.get("429") ?? 0);
      const timed = (t: string) =>
        grouped(t, "inference_extension_scheduler_e2e_duration_microseconds_bucket", (l) =>
          l.le === "+Inf" ? "all" : null,
        );
      assert.equal(sum(growth(timed(text), timed(before))), total, "every decision is timed");
      const picks = (t: string) => grouped(t, "epp_wasm_endpoint_picks_total", (l) => l.endpoint!);
      assert.ok(picks(text).size >= 2, "picks per endpoint");
      assert.equal(sum(growth(picks(text), picks(before))), sum(served), "one pick per routed request");

      if (page === undefined) return;
      // The page: decisions visible (read from that admin), charts holding data, the split table.
      // (It may also hold npm start's own request, made after the sidecar's first read of the admin.)
      const deadline = Date.now() + 20_000; // bounds a hang only
      for (;;) {
        const counted: number = await page.evaluate(
          "[...H.requests.values()].reduce((n, r) => n + r.v.reduce((a, v) => a + (v || 0), 0), 0)",
        );
        const p = [...(await pointsOf(page, "decision-outcomes")), ...(await pointsOf(page, "pod-picks"))];
        if (counted >= total && p.length === 2 && Math.min(...p) >= 3) break;
        assert.ok(Date.now() < deadline, `the page never charted the ${total} requests (holds ${counted})`);
        await page.waitForTimeout(250);
      }
      assert.equal(await page.locator("[data-requests=not-visible]").count(), 0);
      for (const chart of ["decision-errors", "pool-waiting", "pool-running", "pod-load"])
        assert.ok((await pointsOf(page, chart))[0]! >= 3, chart);
      const split = page.locator("table[data-table=traffic-split]");
      const v1 = split.locator("tr", { hasText: "food-review-lora-v1" }).locator("td");
      assert.equal(await v1.nth(2).textContent(), "70%");
      const observed = await v1.nth(3).textContent();
      assert.match(observed ?? "", /^\d+%$/);
      const byModel = page.locator("table[data-table=requests-by-model]");
      assert.ok((await byModel.locator("tr").count()) >= 3, "a row per model and target");

      mkdirSync("test-output", { recursive: true });
      await page.screenshot({ path: "test-output/status-page-decisions.png", fullPage: true });
      if (process.env.EPP_UPDATE_DOCS_IMG === "1") {
        mkdirSync("docs/img", { recursive: true });
        copyFileSync("test-output/status-page-decisions.png", "docs/img/status-page.png");
      }
    } finally {
      await browser?.close();
      await stack.interrupt();
    }
  },
);
