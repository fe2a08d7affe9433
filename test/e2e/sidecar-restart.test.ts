// A gateway process killed and started again on the same ports while the sidecar process runs: the
// restarted gateway holds no snapshot (503 no_snapshot) until the sidecar pushes one. The sidecar probes an
// unreachable Envoy with TCP connects every 100 ms (sidecar/publisher/publisher.ts), so the first push
// follows the listen by about one probe interval whatever the outage lasted. The deadlines below only bound
// a hang; the measured delays are printed (timing claims belong to a quiet machine, not to CI).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSimCluster } from "../../sim/pods.ts";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.ts";
import { freeConsecutivePorts } from "../../scripts/local-stack/ports.ts";
import { waitFor } from "../support/deadline.ts";
import { startSidecarProcess, writePool } from "../sidecar/sidecar-process.ts";

const TOKEN = "restart-e2e-token";
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

async function status(dataPort: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${dataPort}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "hi", max_tokens: 1 }),
      signal: AbortSignal.timeout(2000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Epoch ms of the later "listening" log line of the two listeners (pino's `time`). */
function listenedAt(gw: GatewayProcess): number {
  const times = gw.logs.filter((l) => l.msg === "listening").map((l) => Number(l.time));
  assert.equal(times.length, 2, "both listeners logged");
  return Math.max(...times);
}

test("a restarted gateway gets a snapshot from the running sidecar right after it listens", async () => {
  const sims = await startSimCluster({ pods: 2, basePort: 0, preset: "fast", timeScale: 1, seed: 5 });
  const endpoints = sims.pods.map((p) => `127.0.0.1:${p.port}`);
  const dir = mkdtempSync(join(tmpdir(), "epp-restart-"));
  writePool(
    dir,
    sims.pods.map((p) => p.port),
  );
  const base = await freeConsecutivePorts(2);
  const ports = { data: base, control: base + 1 };
  let gw = await startGatewayProcess({ endpoints, ports, token: TOKEN });
  const sidecar = await startSidecarProcess({
    manifestsDir: dir,
    envoys: [`http://127.0.0.1:${ports.control}`],
    token: TOKEN,
  });
  const measured: string[] = [];
  try {
    await waitFor("the first gateway to route", async () => (await status(ports.data)) === 200, 20_000);
    for (const downMs of [500, 3000, 10_000]) {
      gw.proc.kill("SIGKILL");
      await gw.stop();
      await new Promise((r) => setTimeout(r, downMs));
      gw = await startGatewayProcess({ endpoints, ports, token: TOKEN });
      const listened = listenedAt(gw);
      // A new process starts with empty shared data: until the push it answers 503 (no_snapshot).
      let firstOk = 0;
      await waitFor(
        `the gateway restarted after ${downMs} ms down to route`,
        async () => {
          if ((await status(ports.data)) !== 200) return false;
          firstOk = Date.now();
          return true;
        },
        20_000,
      );
      measured.push(`${downMs} ms down: routing ${firstOk - listened} ms after listening`);
    }
    assert.equal(await sidecar.readyStatus(), 200);
    assert.deepEqual(sidecar.logsAtOrAbove(50), [], "no error logs");
    console.log(`restart → first routed request: ${measured.join("; ")}`);
  } finally {
    await sidecar.kill();
    await gw.stop();
    await sims.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
