// The sidecar's status page in a real browser (Debian's chromium through playwright-core): it shows the
// pool's endpoints live, a change in a simulated pod's load appears in the table, and after a few seconds
// of scrapes the history charts hold data; the page's own copy of the history stays one window long.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { FileInventory } from "../../sidecar/inventory/files.ts";
import { startSimCluster } from "../../sim/pods.ts";
import { startPushSink, startSidecar } from "../support/sidecar-harness.ts";
import { writeLocalManifests } from "../../scripts/local-stack/manifests.ts";
import { findOnPath, requirePrerequisite, skipUnlessCI } from "../support/prereq.ts";

const CHROMIUM = findOnPath("chromium", "chromium-browser");
const TOKEN = "page-token";
const LAUNCH_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Values held by the charts matching `selector` (data-points, set by the page's uPlot charts). */
async function pointsOf(page: Page, selector: string): Promise<number[]> {
  return page
    .locator(selector)
    .evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.points)));
}

/** Whether the first chart matching `selector` has any painted pixel on its canvas. */
async function painted(page: Page, selector: string): Promise<boolean> {
  return page
    .locator(selector + " canvas")
    .first()
    .evaluate((e) => {
      const cv = e as HTMLCanvasElement;
      const px = cv.getContext("2d")!.getImageData(0, 0, cv.width, cv.height).data;
      for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
      return false;
    });
}
// Outside CI a machine without Chromium skips this test; under CI (where .ci/run installs it) it fails.
const noChromium = CHROMIUM
  ? undefined
  : "Chromium: no chromium on PATH (apt-get install chromium; .ci/run does)";

test("status page shows endpoints and follows a pod's load", { skip: skipUnlessCI(noChromium) }, async () => {
  requirePrerequisite(noChromium);
  const sims = await startSimCluster({
    pods: 2,
    basePort: 0,
    preset: "fast",
    timeScale: 1,
    seed: 4,
    overrides: { maxNumSeqs: 1 },
  });
  // examples/local with Pod objects pointing at the simulator's ports (consecutive from the first).
  const ports = sims.pods.map((p) => p.port);
  const manifests = writeLocalManifests("examples/local", 1, ports[0]!);
  writeFileSync(
    join(manifests, "pods.yaml"),
    ports
      .map(
        (port, i) => `apiVersion: v1
kind: Pod
metadata: { name: vllm-sim-${i}, namespace: default, labels: { app: vllm-sim }, annotations: { epp-wasm.io/port: "${port}" } }
status: { podIP: 127.0.0.1, conditions: [{ type: Ready, status: "True" }] }
`,
      )
      .join("---\n"),
  );
  const sink = await startPushSink(TOKEN);
  const sc = await startSidecar({
    inventory: new FileInventory({ manifestsDir: manifests, debounceMs: 20, settleMs: 20 }),
    envoys: [sink.url],
    token: TOKEN,
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: LAUNCH_ARGS });
  const loads: Promise<unknown>[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    // Offline: the page asks for nothing but itself and /status.json (uPlot is inlined, no CDN).
    const requested = new Set<string>();
    page.on("request", (r) => {
      const url = new URL(r.url());
      requested.add(url.origin === new URL(sc.url).origin ? url.pathname : r.url());
    });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(sc.url + "/");
    await page.waitForSelector("text=Pool default/local-pool");
    await page.waitForSelector("text=vllm-sim-1");
    const waitingOf = async (pod: string) =>
      Number(
        await page
          .locator("table[data-table=endpoints] tr", { hasText: pod })
          .locator("td")
          .nth(3)
          .textContent(),
      );
    assert.equal(await waitingOf("vllm-sim-0"), 0);

    // Pile requests onto pod 0: it runs one at a time, so the rest wait.
    for (let i = 0; i < 6; i++) {
      loads.push(
        fetch(`http://127.0.0.1:${ports[0]}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: "meta-llama/Llama-3.1-8B-Instruct",
            prompt: "load",
            max_tokens: 500,
          }),
        }).then(
          (r) => r.arrayBuffer(),
          () => undefined,
        ),
      );
    }
    const deadline = Date.now() + 20_000; // bounds a hang only
    while ((await waitingOf("vllm-sim-0")) < 3) {
      assert.ok(Date.now() < deadline, "the page never showed pod 0's queue growing");
      await page.waitForTimeout(100);
    }
    assert.equal(await waitingOf("vllm-sim-1"), 0);
    assert.ok((await page.locator("text=ready").count()) > 0);

    // History: after a few one-second steps every chart holds data, and pod 0's queue shows in its chart.
    const row0 = 'table[data-table=endpoints] tr:has-text("vllm-sim-0") ';
    while (
      Math.min(
        ...(await pointsOf(page, "[data-chart=pool-waiting]")),
        ...(await pointsOf(page, row0 + "[data-chart=pod-waiting]")),
        ...(await pointsOf(page, "[data-chart=push-rate]")),
      ) < 3
    ) {
      assert.ok(Date.now() < deadline, "the charts never held three steps of data");
      await page.waitForTimeout(200);
    }
    for (const chart of [
      "pool-waiting",
      "pool-running",
      "pool-kv",
      "pool-ready",
      "pool-snapshot-age",
      "pod-load",
    ])
      assert.ok((await pointsOf(page, `[data-chart=${chart}]`))[0]! >= 3, chart);
    assert.equal((await pointsOf(page, "[data-chart=pod-health]")).length, 2);
    assert.ok(await painted(page, "[data-chart=pool-waiting]"));
    assert.ok(await painted(page, row0 + "[data-chart=pod-waiting]"));
    const hist = (await (await fetch(sc.url + "/status.json")).json()) as {
      history: { pools: Array<{ pods: Array<{ pod: string; waiting: Array<number | null> }> }> };
    };
    const pod0 = hist.history.pools[0]!.pods.find((p) => p.pod === "vllm-sim-0")!;
    assert.ok(Math.max(...pod0.waiting.map(Number)) >= 3, "pod 0's queue is in its history");
    // No Envoy admin is given here: the page says plainly that it cannot see the decisions, and shows load per pod.
    assert.match(
      (await page.locator("[data-requests=not-visible]").textContent()) ?? "",
      /cannot see what the picker decided/,
    );
    assert.ok(
      await page.evaluate(
        "H.t.length > 0 && [...H.pools.values()].every((p) => p.waiting.length === H.t.length && [...p.pods.values()].every((q) => q.running.length === H.t.length))",
      ),
      "every series the page holds is aligned with its time axis",
    );
    assert.deepEqual([...requested].sort(), ["/", "/status.json"], "requests the page made");
    assert.deepEqual(errors, [], "script errors on the page");
    mkdirSync("test-output", { recursive: true });
    await page.screenshot({ path: "test-output/status-page.png", fullPage: true });
  } finally {
    await browser.close();
    await sc.stop();
    await sink.close();
    await sims.close();
    await Promise.all(loads);
    rmSync(manifests, { recursive: true, force: true });
  }
});

test(
  "the page keeps one window of history however long it runs",
  { skip: skipUnlessCI(noChromium) },
  async () => {
    requirePrerequisite(noChromium);
    // A stand-in /status.json with a 4-step window that answers five new steps per poll: the page must merge
    // them, drop what falls out of the window, and keep every series aligned.
    const { statusPage } = await import("../../sidecar/status/page.ts");
    const html = await statusPage();
    const browser = await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: LAUNCH_ARGS });
    try {
      const page = await browser.newPage();
      let step = 0;
      await page.route("**/*", async (route) => {
        const url = new URL(route.request().url());
        if (url.pathname !== "/status.json") return route.fulfill({ contentType: "text/html", body: html });
        const t = [1, 2, 3, 4, 5].map((i) => 1_000_000 + (step + i) * 1000);
        step += 5;
        const vals = t.map((_, i) => i);
        const pod = {
          pod: "p0",
          endpoint: "10.0.0.1:8000",
          waiting: vals,
          running: vals,
          kvUsage: vals.map(() => 0.5),
          health: vals.map(() => 0),
        };
        const body = {
          generatedAtMs: t[4],
          ready: true,
          reasons: [],
          config: [],
          requests: { visible: false, note: "no requests here" },
          pools: [
            {
              pool: "default/p",
              generation: "1",
              snapshotAgeMs: 5,
              bytes: 10,
              profile: "default",
              endpoints: [
                {
                  pod: "p0",
                  endpoint: "10.0.0.1:8000",
                  ready: true,
                  stale: false,
                  waiting: 1,
                  running: 1,
                  kvUsage: 0.5,
                  runningAdapters: [],
                  waitingAdapters: [],
                  metricsAgeMs: 3,
                },
              ],
              pushes: [],
            },
          ],
          history: {
            stepMs: 1000,
            windowMs: 4000,
            t,
            pools: [
              {
                pool: "default/p",
                waiting: vals,
                running: vals,
                kvUsage: vals,
                readyPods: vals,
                snapshotAgeMs: vals,
                podsNotCharted: 0,
                pods: [pod],
              },
            ],
            pushes: [],
            configEvents: [],
          },
        };
        return route.fulfill({ contentType: "application/json", body: JSON.stringify(body) });
      });
      await page.goto("http://status.test/");
      while (step < 30) await page.waitForTimeout(100);
      await page.waitForTimeout(600); // one more poll lands
      const held = (await page.evaluate(
        "({ t: H.t.length, pool: H.pools.get('default/p').waiting.length, pod: [...H.pools.get('default/p').pods.values()][0].health.length, last: H.t[H.t.length - 1] })",
      )) as { t: number; pool: number; pod: number; last: number };
      assert.deepEqual({ t: held.t, pool: held.pool, pod: held.pod }, { t: 4, pool: 4, pod: 4 });
      assert.ok(held.last >= 1_000_000 + 30 * 1000);
      assert.equal((await pointsOf(page, "[data-chart=pool-waiting]"))[0], 4);
    } finally {
      await browser.close();
    }
  },
);
