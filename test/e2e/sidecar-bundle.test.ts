// The sidecar as its image runs it: the esbuild bundle (package.json bundle:sidecar, the same command the
// Dockerfile runs) laid out as in the image (/app/dist/sidecar.mjs beside /app/config/scheduling), started by the
// Node running this test from a directory outside the repository, so nothing resolves from node_modules. CI runs
// this on Node 20 (npm test) and again on Node 24 (.ci/run), which is how "the bundle runs on 20, 22 and 24" is
// checked; the bundle targets node20 and nothing in it is newer.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { startSimCluster } from "../../sim/pods.ts";
import { waitFor } from "../support/deadline.ts";
import { poolManifests, startSidecarProcess } from "../sidecar/sidecar-process.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const TOKEN = "bundle-token";
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** Builds dist/sidecar.mjs with package.json's bundle:sidecar into `app`, and copies the shipped configs. */
function bundleInto(app: string): string {
  const script = (
    JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }
  ).scripts["bundle:sidecar"]!;
  const outfile = join(app, "dist/sidecar.mjs");
  const command = script.replace("--outfile=dist/sidecar.mjs", `--outfile=${outfile}`);
  assert.notEqual(command, script, "bundle:sidecar writes dist/sidecar.mjs");
  const built = spawnSync("sh", ["-c", command], {
    cwd: ROOT,
    env: { ...process.env, PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH ?? ""}` },
    encoding: "utf8",
  });
  assert.equal(built.status, 0, `bundle:sidecar failed:\n${built.stdout}${built.stderr}`);
  assert.ok(existsSync(outfile));
  cpSync(join(ROOT, "config/scheduling"), join(app, "config/scheduling"), { recursive: true });
  return outfile;
}

test(`the sidecar bundle runs on Node ${process.versions.node}: --help, then file mode pushing to a gateway that routes`, async () => {
  const app = mkdtempSync(join(tmpdir(), "epp-bundle-"));
  cleanup.push(async () => rmSync(app, { recursive: true, force: true }));
  const bundle = bundleInto(app);

  const help = spawnSync(process.execPath, [bundle, "--help"], { cwd: app, encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--manifests/);
  assert.equal(help.stderr, "", "no warnings on stderr");

  const sims = await startSimCluster({ pods: 2, basePort: 0, preset: "fast", timeScale: 4, seed: 4 });
  cleanup.push(() => sims.close());
  const gw = new Gateway(
    normalizeConfig({
      listeners: [
        { name: "data", address: "127.0.0.1", port: 0 },
        { name: "control", address: "127.0.0.1", port: 0 },
      ],
      wasm: join(ROOT, "build/filter.wasm"),
      workers: 1,
      pluginConfig: {
        pool: { namespace: "default", name: "local-pool" },
        controlToken: TOKEN,
        failureMode: "FailClose",
      },
    }),
  );
  await gw.start();
  cleanup.push(() => gw.stop());
  const manifests = join(app, "manifests");
  mkdirSync(manifests);
  writeFileSync(join(manifests, "pool.yaml"), poolManifests(sims.pods.map((p) => p.port)));
  const sc = await startSidecarProcess({
    manifestsDir: manifests,
    envoys: [`http://127.0.0.1:${gw.listener("control").port}`],
    token: TOKEN,
    entry: ["--max-semi-space-size=16", bundle],
    cwd: app,
  });
  cleanup.push(() => sc.kill("SIGTERM"));
  await waitFor("the bundled sidecar to be ready", async () => (await sc.readyStatus()) === 200, 20_000);
  const res = await fetch(`http://127.0.0.1:${gw.listener("data").port}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt: "hi", max_tokens: 1 }),
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 200);
  assert.ok(["sim-0", "sim-1"].includes(res.headers.get("x-inference-pod") ?? ""));
  assert.deepEqual(sc.logsAtOrAbove(40), [], "no warnings or errors logged");
});
