// The sidecar's status page in a real browser (Debian's chromium through playwright-core): it shows the
// pool's endpoints live, and a change in a simulated pod's load appears in the table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { FileInventory } from "../../sidecar/inventory/files.ts";
import { startSimCluster } from "../../sim/pods.ts";
import { startPushSink, startSidecar } from "../support/sidecar-harness.ts";
import { writeLocalManifests } from "../../scripts/local-stack/manifests.ts";
import { findOnPath, requirePrerequisite, skipUnlessCI } from "../support/prereq.ts";

const CHROMIUM = findOnPath("chromium", "chromium-browser");
const TOKEN = "page-token";
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
  const browser = await chromium.launch({
    executablePath: CHROMIUM!,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const loads: Promise<unknown>[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto(sc.url + "/");
    await page.waitForSelector("text=Pool default/local-pool");
    await page.waitForSelector("text=vllm-sim-1");
    const waitingOf = async (pod: string) =>
      Number(await page.locator("tr", { hasText: pod }).locator("td").nth(3).textContent());
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
