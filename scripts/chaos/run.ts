// One chaos run: the local stack as separate processes (one simulator process per pod, so one pod can die; two
// sidecars; the gateway running build/filter.wasm on the shipped override_host bootstrap, as `npm start` runs
// it), steady traffic, the seeded schedule of faults, memory samples, then the report.
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mulberry32 } from "../../sim/rng.ts";
import { freeConsecutivePorts } from "../local-stack/ports.ts";
import { writeLocalManifests } from "../local-stack/manifests.ts";
import { gatewayConfigFromEnvoy, OVERRIDE_HOST_BOOTSTRAP } from "../local-stack/gateway-config.ts";
import { buildFilterIfNeeded } from "../local-stack/filter-build.ts";
import { ManagedProcess, rssBytes, waitForHttp } from "./processes.ts";
import { buildSchedule, describeFault, type ProcessFault, type SideFault } from "./schedule.ts";
import { Traffic, type Gate } from "./traffic.ts";
import { pushBadSnapshot } from "./bad-snapshots.ts";
import { runSlowClients } from "./slow-clients.ts";
import {
  during,
  formatReport,
  groupLosses,
  summariseSeries,
  verdict,
  type ChaosReport,
  type FaultEvent,
  type MemorySample,
} from "./report.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const ADAPTERS = "food-review-lora-v1,food-review-lora-v2,summaries-lora";
const SIDECARS = 2;

export interface ChaosOptions {
  minutes: number;
  seed: number;
  pods?: number;
  /**
   * The route's retry_on instead of the shipped bootstrap's (an experiment: e.g. adding `reset` to see what it
   * saves); absent = exactly as shipped.
   */
  retryOn?: string[];
  /** Progress lines (the schedule as it runs). */
  log?: (line: string) => void;
  /** Run build/filter.wasm as it is, even when older than its sources (tests: npm test built it). */
  noBuild?: boolean;
  /** Aborting ends the chaos phase early; the report covers what ran. */
  signal?: AbortSignal;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? (() => {});
  const pods = o.pods ?? 4;
  const durationMs = Math.round(o.minutes * 60_000);
  if (!o.noBuild) buildFilterIfNeeded();

  const base = await freeConsecutivePorts(5 + pods);
  const port = {
    data: base,
    control: base + 1,
    admin: base + 2,
    sidecars: [base + 3, base + 4],
    sim: base + 5,
  };
  const token = randomBytes(24).toString("hex");
  const manifests = writeLocalManifests(join(ROOT, "examples/local"), pods, port.sim);
  const podAddresses = Array.from({ length: pods }, (_, i) => `127.0.0.1:${port.sim + i}`);
  const gatewayConfig = gatewayConfigFromEnvoy(OVERRIDE_HOST_BOOTSTRAP, {
    listeners: { data: { port: port.data }, control: { port: port.control } },
    wasm: join(ROOT, "build/filter.wasm"),
    endpoints: podAddresses,
    pluginConfig: {
      pool: { namespace: "default", name: "local-pool" },
      controlToken: token,
      failureMode: "FailClose",
    },
  });
  if (o.retryOn) {
    const policy = gatewayConfig.retryPolicy as { retryOn: string[] } | undefined;
    if (!policy) throw new Error("the shipped bootstrap has no retry policy to change");
    policy.retryOn = o.retryOn;
  }
  const configFile = join(manifests, "gateway.json");
  writeFileSync(configFile, JSON.stringify(gatewayConfig));
  const data = `http://127.0.0.1:${port.data}`;

  const podProcs = podAddresses.map(
    (_, i) =>
      new ManagedProcess({
        name: `pod-${i}`,
        script: "sim/main.ts",
        args: [
          ...["--pods", "1", "--base-port", String(port.sim + i), "--preset", "fast", "--time-scale", "5"],
          ...["--seed", String(o.seed * 100 + i), "--lora-modules", ADAPTERS],
        ],
        ready: (ms) => waitForHttp(`http://127.0.0.1:${port.sim + i}/health`, `pod-${i}`, ms),
      }),
  );
  const gateway = new ManagedProcess({
    name: "gateway",
    script: "gateway/main.ts",
    args: ["--config", configFile, "--admin-port", String(port.admin), "--log-level", "error"],
    ready: (ms) => waitForHttp(`http://127.0.0.1:${port.admin}/stats`, "the gateway", ms),
  });
  const sidecars = port.sidecars.map(
    (p, i) =>
      new ManagedProcess({
        name: `sidecar-${"ab"[i]}`,
        script: "sidecar/main.ts",
        args: [
          ...["--manifests", manifests, "--envoy", `http://127.0.0.1:${port.control}`],
          ...["--port", String(p), "--host", "127.0.0.1", "--log-level", "warn"],
        ],
        env: { EPP_CONTROL_TOKEN: token },
        ready: (ms) => waitForHttp(`http://127.0.0.1:${p}/healthz`, `sidecar-${"ab"[i]}`, ms),
      }),
  );
  const all = [...podProcs, gateway, ...sidecars];
  const killAll = () => all.forEach((p) => p.killNow());
  process.on("exit", killAll);

  const faults: FaultEvent[] = [];
  const samples: MemorySample[] = [];
  const badSnapshots: ChaosReport["badSnapshots"] = [];
  const slowClients: ChaosReport["slowClients"] = [];
  const gatewayRestarts: ChaosReport["gatewayRestarts"] = [];
  const schedule = buildSchedule(o.seed, durationMs, pods, SIDECARS);
  const startedAt = new Date().toISOString();
  let traffic: Traffic | undefined;
  let t0 = Date.now();
  try {
    await Promise.all([...podProcs, gateway, ...sidecars].map((p) => p.start()));
    await waitForHttp(`${data}/epp/healthz`, "the gateway to hold a snapshot", 60_000, 200);
    log(`stack up: ${all.map((p) => `${p.role.name} (pid ${p.pid})`).join(", ")}`);

    const gate: Gate = {
      ready: true,
      async waitReady() {
        while (!gate.ready) await sleep(20);
      },
    };
    traffic = new Traffic({
      baseUrl: data,
      model: MODEL,
      requestClients: 4,
      streamClients: 3,
      seed: o.seed,
      gate,
    });
    const rnd = mulberry32(o.seed ^ 0x5eed);
    t0 = Date.now();
    traffic.start();

    const sampleEvery = durationMs <= 120_000 ? 2000 : 10_000;
    const sample = async () => {
      const rss: Record<string, number> = { chaos: process.memoryUsage().rss };
      for (const p of all) rss[p.role.name] = rssBytes(p.pid);
      const wasm: Record<string, number> = {};
      if (gateway.alive()) {
        try {
          const res = await fetch(`http://127.0.0.1:${port.admin}/stats`, {
            signal: AbortSignal.timeout(2000),
          });
          const body = (await res.json()) as {
            wasmVms: Array<{ vmId: string; worker: number; bytes: number }>;
          };
          for (const v of body.wasmVms) wasm[`${v.vmId}/${v.worker}`] = v.bytes;
        } catch {
          // killed between the check and the request
        }
      }
      samples.push({ t: Date.now() - t0, rss, wasm });
    };
    let phaseDone = false;
    const sampler = (async () => {
      while (!phaseDone && !o.signal?.aborted) {
        await sample();
        await sleep(sampleEvery, o.signal);
      }
    })();

    const runProcessFault = async (f: ProcessFault, plannedAtMs: number) => {
      const targets =
        f.kind === "pod"
          ? [podProcs[f.pod]!]
          : f.kind === "sidecar"
            ? [sidecars[f.sidecar]!]
            : f.kind === "all-sidecars"
              ? sidecars
              : [gateway];
      if (f.kind === "gateway") gate.ready = false;
      const killedAt = Date.now();
      await Promise.all(targets.map((p) => p.kill()));
      await sleep(f.downMs);
      await Promise.all(targets.map((p) => p.start()));
      const ev: FaultEvent = {
        kind: f.kind,
        target: f.kind === "all-sidecars" ? "every sidecar" : targets[0]!.role.name,
        plannedAtMs,
        downMs: f.downMs,
        killedAt,
        restartedAt: Date.now(),
      };
      if (f.kind === "gateway") {
        ev.listenedAt = ev.restartedAt;
        await waitForHttp(`${data}/epp/healthz`, "the restarted gateway to hold a snapshot", 60_000, 200);
        ev.readyAt = Date.now();
        gatewayRestarts.push({ downMs: f.downMs, snapshotAfterListenMs: ev.readyAt - ev.listenedAt });
        gate.ready = true;
      }
      faults.push(ev);
    };
    const runSideFault = async (f: SideFault, atMs: number) => {
      // Both side faults aim at the gateway: one landing while a killed gateway is still restarting would only
      // meet a closed port, so it waits for the gateway to be back (the lanes overlap on slow machines).
      await gate.waitReady();
      if (f.kind === "bad-snapshot") {
        const r = await pushBadSnapshot(
          `http://127.0.0.1:${port.control}/epp/v1/snapshot`,
          token,
          f.variant,
          podAddresses,
          rnd,
        );
        let sidecarsReadyAfterMs: number | undefined;
        if (f.variant === "generation-poison" && r.status === 204) {
          const pushed = Date.now();
          const ready = async () => {
            for (const p of port.sidecars) {
              const res = await fetch(`http://127.0.0.1:${p}/readyz`, { signal: AbortSignal.timeout(2000) });
              await res.arrayBuffer();
              if (res.status !== 200) return false;
            }
            return true;
          };
          // The sidecars see the 409s first (not ready), then win the gateway back.
          await sleep(100);
          while (Date.now() - pushed < 15_000 && !(await ready().catch(() => false))) await sleep(20);
          sidecarsReadyAfterMs = Date.now() - pushed;
        }
        badSnapshots.push({ ...r, atMs, sidecarsReadyAfterMs });
      } else {
        const r = await runSlowClients(port.data, f.variant, f.clients, f.holdMs, MODEL);
        slowClients.push({ ...r, atMs });
      }
    };

    const laneA = (async () => {
      for (const s of schedule.processFaults) {
        await sleep(t0 + s.atMs - Date.now(), o.signal);
        // A lane running late still runs every fault it was given: the phase lasts until it is done.
        if (o.signal?.aborted) return;
        log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${describeFault(s.fault)}`);
        await runProcessFault(s.fault, s.atMs);
      }
    })();
    const side: Array<Promise<void>> = [];
    const laneB = (async () => {
      for (const s of schedule.sideFaults) {
        await sleep(t0 + s.atMs - Date.now(), o.signal);
        if (o.signal?.aborted) return;
        log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${describeFault(s.fault)}`);
        side.push(runSideFault(s.fault, s.atMs));
      }
    })();
    await laneB;
    await laneA;
    await sleep(t0 + durationMs - Date.now(), o.signal);
    phaseDone = true;
    await traffic.stop();
    await Promise.all(side);
    await sampler;
    await sample();
  } catch (err) {
    const tails = all.map((p) => `--- ${p.role.name}:\n${p.tail()}`).join("\n");
    throw new Error(`${(err as Error).message}\n${tails}`);
  } finally {
    await traffic?.stop();
    await Promise.all(all.map((p) => p.kill()));
    process.off("exit", killAll);
    rmSync(manifests, { recursive: true, force: true });
  }

  const records = traffic.records;
  const n = (kind: string, outcome: string) =>
    records.filter((r) => r.kind === kind && r.outcome === outcome).length;
  const lost = groupLosses(records, faults);
  return {
    seed: o.seed,
    minutes: o.minutes,
    startedAt,
    chaosMs: Date.now() - t0,
    stack: {
      pods,
      sidecars: SIDECARS,
      gatewayWorkers: typeof gatewayConfig.workers === "number" ? gatewayConfig.workers : 2,
      cluster: "override_host",
    },
    processes: Object.fromEntries(all.map((p) => [p.role.name, p.pids])),
    slowStarts: Object.fromEntries(
      all.filter((p) => p.failedStarts > 0).map((p) => [p.role.name, p.failedStarts]),
    ),
    schedule,
    faults,
    traffic: {
      requests: { ok: traffic.ok.request, failed: n("request", "failed") },
      streams: {
        ok: traffic.ok.stream,
        failed: n("stream", "failed"),
        cutReported: n("stream", "cut-reported"),
        cutSilent: n("stream", "cut-silent"),
      },
    },
    lost,
    failures: records
      .filter((r) => r.outcome !== "ok")
      .slice(0, 5000)
      .map((r) => ({ ...r, during: during(r, faults) })),
    badSnapshots,
    slowClients,
    gatewayRestarts,
    memory: {
      samples,
      rss: summariseSeries(samples, (s) => s.rss),
      wasm: summariseSeries(samples, (s) => s.wasm),
    },
    verdict: verdict(lost),
  };
}

export { formatReport };
