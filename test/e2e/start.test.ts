// `npm start` as a user runs it: the supervised stack comes up, serves chat completions through the gateway
// to the simulated pods via the official openai client, and leaves no process or port behind on Ctrl-C.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import OpenAI from "openai";
import { portIsFree } from "../../scripts/local-stack/ports.ts";
import { startLocalStack } from "../support/local-stack.ts";

// The timeout leaves room for npm start to rebuild a stale build/filter.wasm first.
test(
  "npm start brings up the stack, serves the openai client, and Ctrl-C stops everything",
  { timeout: 300_000 },
  async () => {
    const stack = await startLocalStack({ pods: 2 });
    const { port, controlPort, sidecarPort, simBase } = stack.ports;
    let exitCode: number | null | undefined;
    try {
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused", maxRetries: 0 });
      // Eight requests at once, long enough to be in flight together. The gateway hands streams to its two
      // workers in turn, and each worker's filter counts the requests it has in flight per pod: with two idle,
      // equal pods they split four and four — unless a scrape lands inside the burst (a loaded machine spreads
      // the eight over more than one 50 ms scrape), which can move one. Herding would put six or more on one pod.
      const served = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const { data, response } = await client.chat.completions
            .create({
              model: "meta-llama/Llama-3.1-8B-Instruct",
              messages: [{ role: "user", content: `hello ${i}` }],
              max_tokens: 400,
            })
            .withResponse();
          assert.ok(data.choices[0]?.message.content);
          assert.equal(
            response.headers.get("x-gateway-destination-endpoint-served")?.startsWith("127.0.0.1:"),
            true,
          );
          return response.headers.get("x-inference-pod") ?? "";
        }),
      );
      const perPod = new Map<string, number>();
      for (const pod of served) perPod.set(pod, (perPod.get(pod) ?? 0) + 1);
      assert.deepEqual([...perPod.keys()].sort(), ["sim-0", "sim-1"], `served by ${served.join(",")}`);
      assert.ok(
        [...perPod.values()].every((n) => n >= 3 && n <= 5),
        `four each, or five and three: served by ${served.join(",")}`,
      );

      // `npm run load` against the same stack: bounded, and its summary names the serving pods.
      const load = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "scripts/load.ts",
          "--url",
          `http://127.0.0.1:${port}`,
          "--requests",
          "12",
          "--quiet",
        ],
        { encoding: "utf8", timeout: 60_000 },
      );
      assert.equal(load.status, 0, load.stderr);
      assert.match(load.stdout, /^12 requests to /m);
      assert.match(load.stdout, /by serving pod\n {2}sim-[01] /);
      assert.match(load.stdout, /by status[^\n]*\n {2}200 /);
    } finally {
      exitCode = await stack.interrupt();
    }
    assert.equal(exitCode, 0, stack.output());
    for (const p of [port, controlPort, sidecarPort, simBase, simBase + 1]) {
      assert.equal(await portIsFree(p), true, `port ${p} still in use after Ctrl-C`);
    }
  },
);
