// The simulator's HTTP API through the official openai client, plus /metrics parsed as Prometheus text.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startSimCluster, type SimCluster } from "../../sim/pods.ts";
import { find, parsePromText } from "./prom-text.ts";
import { waitFor } from "../support/deadline.ts";

const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
let cluster: SimCluster;
let base: string;
let client: OpenAI;

before(async () => {
  // time-scale 50: a 6 ms decode step takes ~0.1 ms of wall time.
  cluster = await startSimCluster({
    pods: 2,
    basePort: 0,
    preset: "h100-llama3-8b",
    timeScale: 50,
    loraModules: ["sql-lora"],
    seed: 3,
  });
  base = `http://127.0.0.1:${cluster.pods[0].port}`;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await cluster.close();
});

test("non-streaming completion: exact max_tokens, usage, pod headers", async () => {
  const { data, response } = await client.completions
    .create({ model: MODEL, prompt: "Hello ".repeat(100), max_tokens: 12 })
    .withResponse();
  assert.equal(data.object, "text_completion");
  assert.equal(data.choices[0].finish_reason, "length");
  assert.equal(data.usage?.completion_tokens, 12);
  assert.equal(data.usage?.prompt_tokens, 150);
  assert.ok(data.choices[0].text.length > 0);
  assert.equal(response.headers.get("x-inference-pod"), "sim-0");
  assert.equal(response.headers.get("x-inference-port"), String(cluster.pods[0].port));
});

test("non-streaming chat completion with max_completion_tokens", async () => {
  const chat = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "Say something." }],
    max_completion_tokens: 5,
  });
  assert.equal(chat.object, "chat.completion");
  assert.equal(chat.choices[0].message.role, "assistant");
  assert.equal(chat.choices[0].message.content?.split(" ").filter(Boolean).length, 5);
  assert.equal(chat.usage?.completion_tokens, 5);
  assert.equal(chat.usage?.total_tokens, (chat.usage?.prompt_tokens ?? 0) + 5);
});

test("streaming chat: role first, one chunk per token, usage chunk, [DONE]; second call hits the prefix cache", async () => {
  const messages = [
    { role: "system" as const, content: "You are a terse assistant. ".repeat(20) },
    { role: "user" as const, content: "What is continuous batching?" },
  ];
  const run = async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    let tokens = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null = null;
    let sawRole = false;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      if (c.delta.role === "assistant") sawRole = true;
      if (c.delta.content) tokens++;
      if (c.finish_reason) finish = c.finish_reason;
    }
    return { tokens, usage, finish, sawRole };
  };
  const first = await run();
  assert.equal(first.tokens, 8);
  assert.equal(first.finish, "length");
  assert.ok(first.sawRole);
  assert.equal(first.usage?.completion_tokens, 8);
  assert.equal(first.usage?.prompt_tokens_details?.cached_tokens, 0);
  const second = await run();
  assert.ok(
    (second.usage?.prompt_tokens_details?.cached_tokens ?? 0) >= 128,
    "shared system prompt was cached",
  );
});

test("raw SSE ends with data: [DONE] and the LoRA adapter is served", async () => {
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "sql-lora", prompt: "select", max_tokens: 3, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const text = await res.text();
  const events = text.split("\n\n").filter(Boolean);
  assert.equal(events.length, 4);
  assert.equal(events.at(-1), "data: [DONE]");
});

test("/v1/models lists the base model and adapters; dynamic LoRA load/unload", async () => {
  const ids = async () => (await client.models.list()).data.map((m) => m.id);
  assert.deepEqual(await ids(), [MODEL, "sql-lora"]);
  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  assert.equal((await post("/v1/load_lora_adapter", { lora_name: "new-lora", lora_path: "/x" })).status, 200);
  assert.equal((await post("/v1/load_lora_adapter", { lora_name: "new-lora", lora_path: "/x" })).status, 400);
  assert.deepEqual(await ids(), [MODEL, "sql-lora", "new-lora"]);
  const c = await client.completions.create({ model: "new-lora", prompt: "hi", max_tokens: 2 });
  assert.equal(c.usage?.completion_tokens, 2);
  assert.equal((await post("/v1/unload_lora_adapter", { lora_name: "new-lora" })).status, 200);
  assert.equal((await post("/v1/unload_lora_adapter", { lora_name: "new-lora" })).status, 404);
});

test("errors: malformed JSON 400, unknown model 404, prompt over max_model_len 400 (OpenAI-style bodies)", async () => {
  const bad = await fetch(`${base}/v1/completions`, { method: "POST", body: "{nope" });
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get("x-inference-pod"), "sim-0");
  const body = (await bad.json()) as { error: { message: string; type: string; code: number } };
  assert.equal(body.error.code, 400);
  assert.match(body.error.message, /malformed JSON/);
  await assert.rejects(
    client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 1 }),
    (e: unknown) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      return true;
    },
  );
  await assert.rejects(
    client.completions.create({ model: MODEL, prompt: "word ".repeat(10_000), max_tokens: 1 }),
    (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.match((e as Error).message, /maximum context length/);
      return true;
    },
  );
});

test("client disconnect mid-stream frees the request's KV blocks", async () => {
  const engine = cluster.pods[1].engine;
  const ctrl = new AbortController();
  const res = await fetch(`http://127.0.0.1:${cluster.pods[1].port}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt: "long ".repeat(400), max_tokens: 4000, stream: true }),
    signal: ctrl.signal,
  });
  const reader = res.body!.getReader();
  await reader.read();
  assert.ok(engine.pool.usedBlocks > 0);
  ctrl.abort();
  await waitFor("the aborted request to leave the engine", () => engine.inFlight === 0, 10_000);
  assert.equal(engine.pool.usedBlocks, 0);
});

test("/metrics?name[]=…: only the named families, as prometheus_client serves them", async () => {
  const res = await fetch(
    `${base}/metrics?name%5B%5D=vllm%3Anum_requests_waiting&name[]=vllm:cache_config_info`,
  );
  assert.equal(res.status, 200);
  const { samples } = parsePromText(await res.text());
  assert.deepEqual(samples.map((s) => s.name).sort(), [
    "vllm:cache_config_info",
    "vllm:num_requests_waiting",
  ]);
});

test("/metrics: vLLM names, labels and histogram buckets parse as Prometheus text", async () => {
  // Its own pod and its own traffic, so the counters below do not depend on which tests ran before.
  const own = await startSimCluster({
    pods: 1,
    basePort: 0,
    preset: "h100-llama3-8b",
    timeScale: 50,
    loraModules: ["sql-lora"],
    seed: 3,
  });
  try {
    const url = `http://127.0.0.1:${own.pods[0].port}`;
    const ownClient = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
    // The same 150-token prompt twice: the second finds its 9 full 16-token blocks in the prefix cache.
    for (let i = 0; i < 2; i++)
      await ownClient.completions.create({ model: MODEL, prompt: "Hello ".repeat(100), max_tokens: 2 });
    for (const model of [MODEL, "sql-lora", MODEL])
      await ownClient.completions.create({ model, prompt: `request for ${model}`, max_tokens: 2 });
    await checkMetricsPage(url, 5);
  } finally {
    await own.close();
  }
});

async function checkMetricsPage(url: string, requests: number): Promise<void> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-inference-pod"), "sim-0");
  const { samples, types } = parsePromText(await res.text());
  const one = (name: string) => {
    const s = find(samples, name);
    assert.equal(s.length, 1, name);
    return s[0];
  };
  for (const name of [
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
  ]) {
    assert.equal(one(name).labels.model_name, MODEL);
    assert.equal(types.get(name), "gauge");
  }
  assert.equal(one("vllm:num_requests_running").value, 0);
  const cache = one("vllm:cache_config_info");
  assert.equal(cache.labels.block_size, "16");
  assert.equal(cache.labels.num_gpu_blocks, "29205");
  const lora = find(samples, "vllm:lora_requests_info");
  assert.ok(lora.length >= 1);
  const newest = lora.reduce((a, b) => (b.value > a.value ? b : a));
  assert.equal(newest.labels.max_lora, "4");
  assert.equal(newest.labels.running_lora_adapters, "");
  assert.equal(newest.labels.waiting_lora_adapters, "");
  assert.ok(Math.abs(newest.value - Date.now() / 1000) < 60, "value is a Unix timestamp");
  assert.equal(types.get("vllm:num_preemptions_total"), "counter");
  one("vllm:num_preemptions_total");
  assert.ok(one("vllm:prefix_cache_queries_total").value > 0);
  assert.ok(one("vllm:prefix_cache_hits_total").value >= 144, "the repeated prompt's 9 blocks");
  const ttftBuckets = find(samples, "vllm:time_to_first_token_seconds_bucket");
  assert.deepEqual(
    ttftBuckets.slice(0, 4).map((s) => s.labels.le),
    ["0.001", "0.005", "0.01", "0.02"],
  );
  assert.equal(ttftBuckets.at(-1)?.labels.le, "+Inf");
  assert.equal(ttftBuckets.at(-1)!.value, requests);
  assert.equal(one("vllm:e2e_request_latency_seconds_count").value, requests);
  for (const h of ["vllm:time_per_output_token_seconds", "vllm:e2e_request_latency_seconds"]) {
    assert.equal(types.get(h), "histogram");
    assert.equal(one(`${h}_count`).labels.model_name, MODEL);
  }
}

test("--engine sglang exposes SGLang metric names", async () => {
  const sg = await startSimCluster({ pods: 1, basePort: 0, preset: "fast", timeScale: 50, flavor: "sglang" });
  try {
    const { samples } = parsePromText(
      await (await fetch(`http://127.0.0.1:${sg.pods[0].port}/metrics`)).text(),
    );
    for (const name of ["sglang:num_queue_reqs", "sglang:num_running_reqs", "sglang:token_usage"])
      assert.equal(find(samples, name).length, 1, name);
    const info = find(samples, "sglang:cache_config_info")[0];
    assert.equal(info.labels.page_size, "16");
    assert.equal(info.labels.num_pages, "512");
    assert.equal(find(samples, "vllm:num_requests_running").length, 0);
  } finally {
    await sg.close();
  }
});
