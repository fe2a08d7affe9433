// The sidecar bundle as the image runs it: `npm run bundle:sidecar`'s script builds one file that starts with
// no node_modules beside it and serves the status page with its chart code (uPlot) inlined — and, where
// Chromium is (under CI it must be), that code draws a chart in the browser with no request beyond the page's own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { freePort } from "../../scripts/local-stack/ports.ts";
import { findOnPath, requirePrerequisite, skipUnlessCI } from "../support/prereq.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CHROMIUM = findOnPath("chromium", "chromium-browser");
const noChromium = CHROMIUM
  ? undefined
  : "Chromium: no chromium on PATH (apt-get install chromium; .ci/run does)";

test(
  "dist/sidecar.mjs serves the status page with uPlot inlined, and it draws offline",
  { timeout: 240_000 },
  async (t) => {
    const browserMissing = skipUnlessCI(noChromium);
    if (browserMissing === undefined) requirePrerequisite(noChromium);
    else t.diagnostic(`the browser part is skipped: ${browserMissing}`);
    // Outside the repo, so nothing can come from its node_modules.
    const dir = mkdtempSync(join(tmpdir(), "epp-bundle-"));
    const bundle = join(dir, "dist", "sidecar.mjs");
    mkdirSync(join(dir, "manifests"));
    const built = spawnSync(
      process.execPath,
      ["--import", "tsx", "scripts/bundle-sidecar.ts", `--outfile=${bundle}`],
      { cwd: ROOT, encoding: "utf8", timeout: 180_000 },
    );
    assert.equal(built.status, 0, built.stderr);
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [bundle, "--manifests", join(dir, "manifests"), "--port", String(port), "--host", "127.0.0.1"],
      { cwd: dir, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, EPP_CONTROL_TOKEN: "t" } },
    );
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const url = `http://127.0.0.1:${port}/`;
    const browser = browserMissing
      ? undefined
      : await chromium.launch({
          executablePath: CHROMIUM!,
          headless: true,
          args: ["--no-sandbox", "--disable-gpu"],
        });
    try {
      let html = "";
      const deadline = Date.now() + 30_000; // bounds a hang only
      for (;;) {
        const r = await fetch(url).catch(() => undefined);
        if (r?.ok) {
          html = await r.text();
          break;
        }
        assert.ok(
          Date.now() < deadline && child.exitCode === null,
          `the bundle never served ${url}:\n${stderr}`,
        );
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.match(
        html,
        /uPlot 1\.\d+\.\d+ \(https:\/\/github\.com\/leeoniya\/uPlot\)\nThe MIT License/,
        "uPlot and its licence",
      );
      assert.match(html, /\.uplot\b/, "uPlot's stylesheet");
      assert.doesNotMatch(
        html,
        /<script[^>]+src=|<link[^>]+href="(?!data:)/i,
        "nothing loaded from elsewhere",
      );

      if (browser === undefined) return;
      const page = await browser.newPage();
      const requested = new Set<string>();
      page.on("request", (r) => requested.add(r.url().startsWith(url) ? new URL(r.url()).pathname : r.url()));
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(url);
      await page.waitForFunction("document.getElementById('state').textContent !== 'loading…'");
      // Hold the page's polls from here on, so no render sweeps away the probe chart below.
      await page.route("**/status.json*", () => undefined);
      await page.waitForTimeout(1500);
      // The bundled chart code draws: one chart with three values, its canvas painted.
      const drawn = (await page.evaluate(`(async () => {
      const t = [1000, 2000, 3000].map((s) => 1_700_000_000_000 + s);
      Charts.begin();
      const el = Charts.line("probe", { name: "probe", width: 300, height: 120, t, from: t[0], to: t[2],
        lines: [{ label: "probe", color: "#3a7bd5", values: [1, null, 3] }, { label: "two", color: "#d5573a", values: [2, 2, 2] }] });
      document.body.appendChild(el);
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50))); // uPlot draws on its next commit
      const cv = el.querySelector("canvas"), px = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
      let painted = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
      return { points: Number(el.dataset.points), painted, legend: el.querySelectorAll(".u-legend .u-series").length };
    })()`)) as { points: number; painted: number; legend: number };
      assert.equal(drawn.points, 5);
      assert.ok(drawn.painted > 0, "the canvas has painted pixels");
      assert.equal(drawn.legend, 3, "a legend row for time and each line");
      assert.deepEqual([...requested].sort(), ["/", "/status.json"]);
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode === null ? child.once("exit", r) : r(undefined)));
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
