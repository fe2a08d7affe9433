// Two sidecars pushing to the same gateway with no coordination (the shipped manifests run two replicas).
// Generations are wall-clock based (sidecar/snapshot/generation.ts): each replica's snapshots are accepted
// while newer than what the gateway holds, and a 409 ("superseded", with the held generation) makes the
// replica continue above it, so neither replica's death leaves the gateway on a snapshot nobody refreshes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSimCluster, type SimCluster } from "../../sim/pods.ts";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.ts";
import { waitFor } from "../support/deadline.ts";
import { startSidecarProcess, writePool, type SidecarProcess } from "../sidecar/sidecar-process.ts";
import { FileInventory } from "../../sidecar/inventory/files.ts";
import { Publisher, type PushResult } from "../../sidecar/publisher/publisher.ts";
import { staticTargets } from "../../sidecar/publisher/discovery.ts";
import { Sidecar } from "../../sidecar/sidecar.ts";
import { SidecarMetrics } from "../../sidecar/metrics.ts";
import { createMetricsFetcher } from "../../sidecar/collector/fetchers.ts";
import type { Logger } from "../../sidecar/inventory/types.ts";

const TOKEN = "active-active-token";
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const POOL = "default/local-pool";

async function status(dataPort: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${dataPort}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "hi", max_tokens: 1 }),
      signal: AbortSignal.timeout(5000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** `clients` loops of back-to-back requests until stopped; every non-200 is recorded. */
function steadyTraffic(dataPort: number, clients = 4) {
  let running = true;
  let ok = 0;
  const failures: number[] = [];
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const s = await status(dataPort);
      if (s === 200) ok++;
      else failures.push(s);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ok, failures };
    },
  };
}

/** Polls a sidecar's /readyz every 50 ms until stopped; every non-200 is recorded. */
function watchReadiness(sc: SidecarProcess) {
  let running = true;
  const bad: number[] = [];
  let polls = 0;
  const loop = (async () => {
    while (running) {
      const s = await sc.readyStatus().catch(() => 0);
      polls++;
      if (s !== 200) bad.push(s);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { polls, bad };
    },
  };
}

/** The generation the gateway last acknowledged from this sidecar (its push status). */
async function ackedGeneration(sc: SidecarProcess): Promise<bigint> {
  const res = await fetch(`${sc.url}/debug/snapshot?pool=${POOL}`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { pushes: Array<{ ackedGeneration?: string }> };
  return BigInt(body.pushes[0]?.ackedGeneration ?? "0");
}

async function withPool(
  body: (s: { sims: SimCluster; gw: GatewayProcess; dir: string }) => Promise<void>,
): Promise<void> {
  const sims = await startSimCluster({ pods: 2, basePort: 0, preset: "fast", timeScale: 1, seed: 7 });
  const dir = mkdtempSync(join(tmpdir(), "epp-active-active-"));
  writePool(
    dir,
    sims.pods.map((p) => p.port),
  );
  const gw = await startGatewayProcess({
    endpoints: sims.pods.map((p) => `127.0.0.1:${p.port}`),
    token: TOKEN,
  });
  try {
    await body({ sims, gw, dir });
  } finally {
    await gw.stop();
    await sims.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("two sidecar processes: SIGKILL either one under steady traffic, no request fails, the survivor stays ready and takes over", async () => {
  await withPool(async ({ gw, dir }) => {
    const envoys = [`http://127.0.0.1:${gw.controlPort}`];
    const a = await startSidecarProcess({ manifestsDir: dir, envoys, token: TOKEN });
    const b = await startSidecarProcess({ manifestsDir: dir, envoys, token: TOKEN });
    let a2: SidecarProcess | undefined;
    try {
      await waitFor("the gateway to route", async () => (await status(gw.dataPort)) === 200, 20_000);
      await waitFor(
        "both sidecars ready",
        async () => (await a.readyStatus()) === 200 && (await b.readyStatus()) === 200,
        20_000,
      );
      const traffic = steadyTraffic(gw.dataPort);
      const bReady = watchReadiness(b);
      await new Promise((r) => setTimeout(r, 1000));

      // Kill A: B's snapshots keep being stored (its acknowledged generation moves on).
      await a.kill("SIGKILL");
      const bBefore = await ackedGeneration(b);
      await waitFor(
        "B's pushes to be stored after A died",
        async () => (await ackedGeneration(b)) > bBefore,
        10_000,
      );
      await new Promise((r) => setTimeout(r, 1500));
      const bWindow = await bReady.stop();

      // A comes back; then kill B: A's replacement takes over the same way.
      a2 = await startSidecarProcess({ manifestsDir: dir, envoys, token: TOKEN });
      await waitFor("the new A ready", async () => (await a2!.readyStatus()) === 200, 20_000);
      const aReady = watchReadiness(a2);
      await new Promise((r) => setTimeout(r, 1000));
      await b.kill("SIGKILL");
      const aBefore = await ackedGeneration(a2);
      await waitFor(
        "A's pushes to be stored after B died",
        async () => (await ackedGeneration(a2!)) > aBefore,
        10_000,
      );
      await new Promise((r) => setTimeout(r, 1500));
      const aWindow = await aReady.stop();
      const { ok, failures } = await traffic.stop();

      console.log(
        `active-active kill: ${ok} requests ok, ${failures.length} failed; readiness polls ${bWindow.polls} + ${aWindow.polls}`,
      );
      assert.deepEqual(failures, [], "no request failed while a sidecar died");
      assert.ok(ok > 50, `steady traffic ran (${ok} requests)`);
      assert.deepEqual(bWindow.bad, [], "B stayed ready while A ran and died");
      assert.deepEqual(aWindow.bad, [], "the new A stayed ready while B ran and died");
      for (const sc of [a, b, a2]) assert.deepEqual(sc.logsAtOrAbove(40), [], "no warning or error logs");
    } finally {
      await a.kill().catch(() => {});
      await b.kill().catch(() => {});
      await a2?.kill().catch(() => {});
    }
  });
});

/** An in-process sidecar whose clock runs `offsetMs` off the machine's, with the production publisher. */
async function skewedSidecar(dir: string, envoy: string, offsetMs: number) {
  const results: Array<PushResult & { at: number }> = [];
  const logged: string[] = [];
  const logger: Logger = {
    info() {},
    debug() {},
    warn: (o, msg) => logged.push(`warn ${msg ?? ""} ${JSON.stringify(o)}`),
    error: (o, msg) => logged.push(`error ${msg ?? ""} ${JSON.stringify(o)}`),
  };
  const fetcher = createMetricsFetcher();
  const holder: { sidecar?: Sidecar } = {};
  const publisher = new Publisher({
    controlPath: "/epp/v1/snapshot",
    token: TOKEN,
    onResult: (r) => {
      results.push({ ...r, at: Date.now() });
      holder.sidecar?.recordPush(r);
    },
  });
  publisher.setTargets(staticTargets([envoy]));
  const inventory = new FileInventory({ manifestsDir: dir, debounceMs: 20, settleMs: 20 });
  const sidecar = new Sidecar({
    inventory,
    publisher,
    metrics: new SidecarMetrics({ processMetrics: false }),
    fetch: fetcher.fetch,
    open: fetcher.open,
    logger,
    now: () => Date.now() + offsetMs,
  });
  holder.sidecar = sidecar;
  await sidecar.start();
  return {
    sidecar,
    results,
    logged,
    async stop() {
      await sidecar.stop();
      await fetcher.close();
    },
  };
}

test("two sidecars whose clocks differ by 600 ms: no errors, no readiness flaps, the one behind takes over when the one ahead stops", async () => {
  await withPool(async ({ gw, dir }) => {
    const envoy = `http://127.0.0.1:${gw.controlPort}`;
    const ahead = await skewedSidecar(dir, envoy, +300);
    const behind = await skewedSidecar(dir, envoy, -300);
    try {
      await waitFor(
        "both ready",
        () => ahead.sidecar.readiness().ready && behind.sidecar.readiness().ready,
        20_000,
      );
      const traffic = steadyTraffic(gw.dataPort);
      const notReady: string[] = [];
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        for (const [name, s] of [
          ["ahead", ahead],
          ["behind", behind],
        ] as const) {
          const r = s.sidecar.readiness();
          if (!r.ready) notReady.push(`${name}: ${r.reasons.join("; ")}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      const count = (rs: PushResult[], o: string) => rs.filter((r) => r.outcome === o).length;
      const both = `ahead ${count(ahead.results, "ok")} ok / ${count(ahead.results, "superseded")} superseded, behind ${count(behind.results, "ok")} ok / ${count(behind.results, "superseded")} superseded`;

      const stoppedAt = Date.now();
      await ahead.stop();
      await waitFor(
        "the sidecar behind to have a push stored after the one ahead stopped",
        () => behind.results.some((r) => r.at > stoppedAt && r.outcome === "ok"),
        10_000,
      );
      const takeover = behind.results.find((r) => r.at > stoppedAt && r.outcome === "ok")!.at - stoppedAt;
      const afterStop = behind.results.length;
      // At least a second of pushes alone, and at least two of them (a loaded machine pushes slower).
      await new Promise((r) => setTimeout(r, 1000));
      await waitFor(
        "two more pushes from the sidecar left",
        () => behind.results.length >= afterStop + 2,
        10_000,
      );
      const later = behind.results.slice(afterStop);
      const { ok, failures } = await traffic.stop();
      console.log(
        `skewed replicas: ${both}; takeover ${takeover} ms after the one ahead stopped; ${ok} requests ok`,
      );

      assert.deepEqual(notReady, [], "readiness never flapped");
      assert.deepEqual([...ahead.logged, ...behind.logged], [], "no warnings or errors");
      assert.equal(count(ahead.results, "error") + count(behind.results, "error"), 0);
      assert.ok(later.length > 0 && later.every((r) => r.outcome === "ok"), "alone, every push is stored");
      assert.ok(behind.sidecar.readiness().ready);
      assert.deepEqual(failures, [], "no request failed");
    } finally {
      await ahead.stop().catch(() => {});
      await behind.stop();
    }
  });
});
