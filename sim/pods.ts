// Starts N simulated pods in one process, each its own engine and HTTP server on consecutive
// ports (or port 0 each), sharing one sped-up real clock.
import { RealClock } from "./clock/real-clock.ts";
import { Engine } from "./engine/engine.ts";
import { presetConfig, type EngineConfig } from "./engine/presets.ts";
import type { EngineFlavor } from "./engine/metrics.ts";
import { startPodServer, type PodServer } from "./http/server.ts";

export interface SimClusterOptions {
  pods?: number;
  /** First port; pod i listens on basePort + i. 0 gives every pod a free port. */
  basePort?: number;
  host?: string;
  preset?: string;
  overrides?: Partial<EngineConfig>;
  timeScale?: number;
  model?: string;
  loraModules?: string[];
  flavor?: EngineFlavor;
  seed?: number;
  podNamePrefix?: string;
  namespace?: string;
  /** Every pod serves HTTP/2 cleartext (prior knowledge) instead of HTTP/1.1. */
  h2c?: boolean;
}

export interface SimCluster {
  pods: PodServer[];
  clock: RealClock;
  close(): Promise<void>;
}

export async function startSimCluster(o: SimClusterOptions = {}): Promise<SimCluster> {
  const clock = new RealClock(o.timeScale ?? 1);
  const config = presetConfig(o.preset ?? "h100-llama3-8b", o.overrides);
  const pods: PodServer[] = [];
  const n = o.pods ?? 1;
  try {
    for (let i = 0; i < n; i++) {
      const engine = new Engine({
        config,
        clock,
        seed: (o.seed ?? 1) * 1000 + i,
        model: o.model,
        loraModules: o.loraModules,
        flavor: o.flavor,
      });
      const port = o.basePort ? o.basePort + i : 0;
      pods.push(
        await startPodServer({
          engine,
          port,
          host: o.host,
          podName: `${o.podNamePrefix ?? "sim"}-${i}`,
          namespace: o.namespace,
          h2c: o.h2c,
        }),
      );
    }
  } catch (err) {
    clock.stop();
    await Promise.all(pods.map((p) => p.close()));
    throw err;
  }
  return {
    pods,
    clock,
    close: async () => {
      clock.stop();
      await Promise.all(pods.map((p) => p.close()));
    },
  };
}
