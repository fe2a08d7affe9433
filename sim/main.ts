// CLI: npm run sim -- --pods 4 --base-port 8000 --preset h100-llama3-8b --lora-modules a,b
import { parseArgs } from "node:util";
import { PRESETS } from "./engine/presets.ts";
import { startSimCluster } from "./pods.ts";

const usage = `usage: npm run sim -- [options]
  --pods N              simulated pods in this process (default 1)
  --base-port P         pod i listens on P+i (default 8000; 0 = any free port)
  --host H              bind address (default 127.0.0.1)
  --preset NAME         ${Object.keys(PRESETS).join(" | ")} (default h100-llama3-8b)
  --time-scale X        run X times faster than wall clock (default 1)
  --model NAME          base model name (default meta-llama/Llama-3.1-8B-Instruct)
  --lora-modules a,b    adapters servable from start
  --max-loras N         LoRA slots per batch
  --num-gpu-blocks N    KV cache size in blocks
  --max-num-seqs N      running-request cap
  --max-model-len N     context limit
  --engine vllm|sglang  metric names to expose (default vllm)
  --seed N              output-length randomness (default 1)
  --h2c                 serve HTTP/2 cleartext with prior knowledge (an InferencePool with appProtocol
                        kubernetes.io/h2c; route to it with envoy/envoy-h2c.yaml)`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${v}"`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pods: { type: "string" },
      "base-port": { type: "string" },
      host: { type: "string" },
      preset: { type: "string" },
      "time-scale": { type: "string" },
      model: { type: "string" },
      "lora-modules": { type: "string" },
      "max-loras": { type: "string" },
      "num-gpu-blocks": { type: "string" },
      "max-num-seqs": { type: "string" },
      "max-model-len": { type: "string" },
      engine: { type: "string" },
      seed: { type: "string" },
      h2c: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const flavor = values.engine ?? "vllm";
  if (flavor !== "vllm" && flavor !== "sglang")
    throw new Error(`--engine must be vllm or sglang, got "${flavor}"`);
  const overrides: Record<string, number> = {};
  const set = (key: string, v: number | undefined) => {
    if (v !== undefined) overrides[key] = v;
  };
  set("maxLoras", int(values["max-loras"], "max-loras"));
  set("numGpuBlocks", int(values["num-gpu-blocks"], "num-gpu-blocks"));
  set("maxNumSeqs", int(values["max-num-seqs"], "max-num-seqs"));
  set("maxModelLen", int(values["max-model-len"], "max-model-len"));
  const cluster = await startSimCluster({
    pods: int(values.pods, "pods") ?? 1,
    basePort: int(values["base-port"], "base-port") ?? 8000,
    host: values.host,
    preset: values.preset,
    overrides,
    timeScale: int(values["time-scale"], "time-scale"),
    model: values.model,
    loraModules: values["lora-modules"]?.split(",").filter(Boolean),
    flavor,
    seed: int(values.seed, "seed"),
    h2c: values.h2c,
  });
  for (const p of cluster.pods)
    console.log(`${p.podName} listening on http://${values.host ?? "127.0.0.1"}:${p.port}`);
  const stop = () => {
    cluster.close().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((err: unknown) => {
  console.error(`sim: ${(err as Error).message}\n\n${usage}`);
  process.exit(1);
});
