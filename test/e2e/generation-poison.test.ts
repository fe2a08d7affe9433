// A pushed generation of 2^64-1 must not lock the real sidecar out (issue: one push of it bricked the
// sidecar, which jumped past the u64 range, while its /readyz stayed 200). Real processes: `npm start`'s
// stack (simulated pods, the sidecar, the gateway), and a hostile push to the control listener.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { minimalSnapshot } from "../sidecar/snapshot-samples.ts";
import { startLocalStack } from "../support/local-stack.ts";
import { waitFor } from "../support/sidecar-harness.ts";

async function complete(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "meta-llama/Llama-3.1-8B-Instruct", prompt: "hi", max_tokens: 1 }),
  });
  await res.arrayBuffer();
  return res.status;
}

test(
  "a pushed generation 2^64-1 holds routing for at most the hold time; the sidecar takes it back",
  { timeout: 300_000 },
  async () => {
    const token = randomBytes(16).toString("hex");
    const stack = await startLocalStack({ pods: 2, env: { ...process.env, EPP_CONTROL_TOKEN: token } });
    const { port, controlPort, sidecarPort } = stack.ports;
    try {
      await waitFor("routing through the stack", async () => (await complete(port)) === 200, 30_000);

      // The hostile snapshot: the stack's pool, the largest generation, and no endpoint at all.
      const poisoned = minimalSnapshot();
      poisoned.pool = { ...poisoned.pool, namespace: "default", name: "local-pool" };
      poisoned.generation = 2n ** 64n - 1n;
      poisoned.createdAtMs = Date.now();
      poisoned.endpoints = [];
      const pushed = await fetch(`http://127.0.0.1:${controlPort}/epp/v1/snapshot`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
        body: Buffer.from(encodeSnapshot(poisoned)),
      });
      assert.equal(pushed.status, 204, await pushed.text());
      const pushedAt = performance.now();

      // While it holds, the sidecar's pushes get 409 and it says it is not ready, naming the generation.
      let reasons: string[] = [];
      await waitFor(
        "the sidecar to report the generation it did not produce",
        async () => {
          const r = await fetch(`http://127.0.0.1:${sidecarPort}/readyz`);
          reasons = ((await r.json()) as { reasons: string[] }).reasons;
          return r.status === 503 && reasons.some((x) => x.includes("18446744073709551615"));
        },
        10_000,
      );

      await waitFor("routing to come back", async () => (await complete(port)) === 200, 10_000);
      const recoveredMs = performance.now() - pushedAt;
      console.log(`generation-poison: routing back ${recoveredMs.toFixed(0)} ms after the hostile push`);
      await waitFor(
        "the sidecar to be ready again",
        async () => (await fetch(`http://127.0.0.1:${sidecarPort}/readyz`)).status === 200,
        10_000,
      );
      for (let i = 0; i < 5; i++) assert.equal(await complete(port), 200);
      assert.doesNotMatch(stack.output(), /expected a u64/, "the sidecar never made an invalid generation");
    } finally {
      await stack.interrupt();
    }
  },
);
