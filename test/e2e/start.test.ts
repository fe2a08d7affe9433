// `npm start` as a user runs it: the supervised stack comes up, serves chat completions through the gateway
// to the simulated pods via the official openai client, and leaves no process or port behind on Ctrl-C.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import OpenAI from "openai";
import { freeConsecutivePorts, freePorts, portIsFree } from "../../scripts/local-stack/ports.ts";

test("npm start brings up the stack, serves the openai client, and Ctrl-C stops everything", async () => {
  const [port, controlPort, sidecarPort] = await freePorts(3);
  // Two consecutive free ports for the pods.
  const simBase = await freeConsecutivePorts(2);
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "scripts/start.ts",
      ...["--pods", "2", "--port", String(port), "--control-port", String(controlPort)],
      ...["--sidecar-port", String(sidecarPort), "--sim-base-port", String(simBase)],
      ...["--preset", "fast", "--time-scale", "5"],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    const deadline = Date.now() + 60_000;
    while (!output.includes("local stack is up")) {
      if (Date.now() > deadline || child.exitCode !== null) assert.fail(`stack did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused", maxRetries: 0 });
    const pods = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const { data, response } = await client.chat.completions
        .create({
          model: "meta-llama/Llama-3.1-8B-Instruct",
          messages: [{ role: "user", content: `hello ${i}` }],
          max_tokens: 4,
        })
        .withResponse();
      assert.ok(data.choices[0]?.message.content);
      const pod = response.headers.get("x-inference-pod");
      assert.match(pod ?? "", /^sim-[01]$/);
      assert.equal(
        response.headers.get("x-gateway-destination-endpoint-served")?.startsWith("127.0.0.1:"),
        true,
      );
      pods.add(pod!);
    }
    assert.ok(pods.size >= 1);

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
    child.kill("SIGINT");
    assert.equal(await exited, 0, output);
  }
  for (const p of [port, controlPort, sidecarPort, simBase, simBase + 1]) {
    assert.equal(await portIsFree(p!), true, `port ${p} still in use after Ctrl-C`);
  }
});
