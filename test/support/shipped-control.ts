// Test support for runs of the shipped Envoy bootstraps through the local gateway: the control listener's
// pool and token as the file configures them, and a hand-made snapshot of loopback pods whose load rises
// with their index (pod-0 is the least loaded), so which pod is the pick is the test's to decide.
import assert from "node:assert/strict";
import { readShippedEnvoy } from "../../scripts/local-stack/gateway-config.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";

export interface ShippedControl {
  pool: { namespace: string; name: string };
  path: string;
  token: string;
}

/** The pool and control token `bootstrap`'s control listener is configured with (nothing is overridden). */
export function shippedControl(bootstrap: string): ShippedControl {
  const control = readShippedEnvoy(bootstrap).listeners.find((l) => l.name === "control");
  assert.ok(control, `${bootstrap} has a control listener`);
  const c = control.pluginConfig as {
    pool: { namespace: string; name: string };
    controlPath: string;
    controlToken: string;
  };
  return { pool: c.pool, path: c.controlPath, token: c.controlToken };
}

/** A snapshot of `pool` listing loopback pods on `ports`; pod-i has 4·i waiting and running requests. */
export function loopbackSnapshot(
  pool: { namespace: string; name: string },
  generation: bigint,
  ports: number[],
): Snapshot {
  return {
    generation,
    createdAtMs: Date.now(),
    pool: { ...pool, failureMode: "FailClose", strictModels: false, targetPorts: [8000] },
    endpoints: ports.map((port, i) => ({
      podName: `pod-${i}`,
      address: "127.0.0.1",
      port,
      ready: true,
      stale: false,
      hasMetrics: true,
      engine: "vllm",
      metricsAgeMs: 10,
      waiting: i * 4,
      running: i * 4,
      kvUsage: 0.1 + i * 0.2,
      maxLoras: 0,
      kvBlockSize: 16,
      kvBlockCount: 1000,
      runningAdapters: [],
      waitingAdapters: [],
    })),
    models: [],
    objectives: [],
    rewrites: [],
    scheduler: {
      profile: "default",
      queueThreshold: 5,
      kvThreshold: 0.8,
      metricsStalenessMs: 200,
      params: {},
    },
  };
}
