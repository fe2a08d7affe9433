// Steady traffic through the gateway for the whole run, each client a loop of back-to-back requests:
// - non-streaming chat completions with the official `openai` client (maxRetries 0: every failure is seen);
// - streaming chat completions with the same client: a stream is complete when a chunk carries finish_reason,
//   since the SDK ends a stream quietly when the bytes stop without `data: [DONE]`
//   (node_modules/openai/core/streaming.mjs), so a cut that looks like a clean end shows up as no finish_reason;
// - streaming over plain node:http, which sees exactly what the client got: `data: [DONE]`, and whether the
//   response ended with its terminating chunk (res.complete) or was aborted.
// Clients wait while the gateway is down or not yet ready, as a load balancer with a readiness probe would.
import http from "node:http";
import OpenAI from "openai";
import { mulberry32 } from "../../sim/rng.ts";

export type Outcome = "ok" | "failed" | "cut-reported" | "cut-silent";

export interface RequestRecord {
  kind: "request" | "stream";
  client: "openai" | "http";
  start: number;
  end: number;
  outcome: Outcome;
  /** Why it failed or was cut (status and error code, or the connection error). */
  cause?: string;
  /** Stream chunks received before the end. */
  chunks?: number;
}

export interface Gate {
  /** False from the moment the gateway is killed until its health path answers 200 again. */
  ready: boolean;
  /** Resolves once ready (polled; the clients share one gate). */
  waitReady(): Promise<void>;
}

export interface TrafficOptions {
  baseUrl: string;
  model: string;
  requestClients: number;
  streamClients: number;
  seed: number;
  gate: Gate;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Prompts from a handful of shared prefixes, so prefix affinity has something to hold on to. */
function promptSource(seed: number): () => string {
  const rnd = mulberry32(seed);
  const prefixes = [
    "You are a food critic. Review the following dish in two sentences:",
    "Summarise this support ticket for an on-call engineer:",
    "Translate the following sentence into French:",
    "Explain to a child why the sky is blue, using this detail:",
  ];
  return () =>
    `${prefixes[Math.floor(rnd() * prefixes.length)]} item ${Math.floor(rnd() * 1000)} of the chaos run.`;
}

/** A short, stable cause for an error thrown by the openai client or node:http. */
export function causeOf(err: unknown): string {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return "client timeout";
  if (err instanceof OpenAI.APIError && err.status !== undefined) {
    const code = err.code ?? String(err.message).replace(/^\d+\s*/, "");
    return `${err.status} ${normalise(code)}`;
  }
  let e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  for (let i = 0; i < 4 && e; i++) {
    if (e.code) return `connection: ${e.code}`;
    e = e.cause as typeof e;
  }
  return `error: ${normalise(String((err as Error)?.message ?? err))}`;
}

/** Drops what varies per request (numbers, ids) so equal causes count together. */
function normalise(s: string): string {
  return s
    .replace(/\s+/g, " ")
    .replace(/\d+(\.\d+)?/g, "N")
    .trim()
    .slice(0, 140);
}

export class Traffic {
  readonly records: RequestRecord[] = [];
  /** Completed requests and streams (kept as counts: a long run makes hundreds of thousands). */
  readonly ok = { request: 0, stream: 0 };
  private running = true;
  private loops: Array<Promise<void>> = [];
  private readonly client: OpenAI;

  constructor(private readonly o: TrafficOptions) {
    this.client = new OpenAI({
      baseURL: `${o.baseUrl}/v1`,
      apiKey: "unused",
      maxRetries: 0,
      timeout: 60_000,
    });
  }

  start(): void {
    for (let i = 0; i < this.o.requestClients; i++) this.loops.push(this.loop(i, (p) => this.request(p)));
    for (let i = 0; i < this.o.streamClients; i++) {
      // Every third stream client speaks plain HTTP.
      const raw = i % 3 === 2;
      this.loops.push(this.loop(100 + i, (p) => (raw ? this.rawStream(p) : this.stream(p))));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(id: number, one: (prompt: string) => Promise<RequestRecord | undefined>): Promise<void> {
    const next = promptSource(this.o.seed * 1000 + id);
    while (this.running) {
      if (!this.o.gate.ready) {
        await this.o.gate.waitReady();
        continue;
      }
      const r = await one(next());
      if (r) {
        this.records.push(r);
        if (r.outcome !== "ok") await sleep(50); // no tight loop against a failing stack
      }
    }
  }

  private async request(prompt: string): Promise<RequestRecord | undefined> {
    const start = Date.now();
    let cause: string;
    try {
      const r = await this.client.chat.completions.create({
        model: this.o.model,
        messages: [{ role: "user", content: prompt }],
        max_tokens: 8,
      });
      if (r.choices.length > 0) {
        this.ok.request++;
        return undefined;
      }
      cause = "no choices";
    } catch (err) {
      cause = causeOf(err);
    }
    return { kind: "request", client: "openai", start, end: Date.now(), outcome: "failed", cause };
  }

  private async stream(prompt: string): Promise<RequestRecord | undefined> {
    const start = Date.now();
    let chunks = 0;
    let finished = false;
    const rec = (outcome: Outcome, cause?: string): RequestRecord => ({
      kind: "stream",
      client: "openai",
      start,
      end: Date.now(),
      outcome,
      cause,
      chunks,
    });
    let stream;
    try {
      stream = await this.client.chat.completions.create({
        model: this.o.model,
        messages: [{ role: "user", content: prompt }],
        max_tokens: 48,
        stream: true,
      });
    } catch (err) {
      return rec("failed", causeOf(err));
    }
    try {
      for await (const chunk of stream) {
        chunks++;
        if (chunk.choices.some((c) => c.finish_reason)) finished = true;
      }
    } catch (err) {
      // An error after the last chunk changes nothing the client needed.
      return finished ? this.okStream() : rec("cut-reported", causeOf(err));
    }
    if (finished) return this.okStream();
    return rec("cut-silent", "ended without finish_reason");
  }

  private okStream(): undefined {
    this.ok.stream++;
    return undefined;
  }

  private rawStream(prompt: string): Promise<RequestRecord | undefined> {
    const start = Date.now();
    const url = new URL(`${this.o.baseUrl}/v1/chat/completions`);
    const body = JSON.stringify({
      model: this.o.model,
      messages: [{ role: "user", content: prompt }],
      max_tokens: 48,
      stream: true,
    });
    return new Promise((resolve) => {
      let settled = false;
      let chunks = 0;
      let sawDone = false;
      const done = (outcome: Outcome, cause?: string) => {
        if (settled) return;
        settled = true;
        if (outcome === "ok") resolve(this.okStream());
        else resolve({ kind: "stream", client: "http", start, end: Date.now(), outcome, cause, chunks });
      };
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          agent: false,
          timeout: 60_000,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          if (res.statusCode !== 200) {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (text += c));
            res.on("close", () => {
              let code = text;
              try {
                code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? text;
              } catch {
                // a plain-text reply from the gateway
              }
              done("failed", `${res.statusCode} ${normalise(code)}`);
            });
            return;
          }
          let partial = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            const lines = (partial + c).split("\n");
            partial = lines.pop() ?? "";
            for (const l of lines) {
              if (!l.startsWith("data: ")) continue;
              chunks++;
              if (l.startsWith("data: [DONE]")) sawDone = true;
            }
          });
          res.on("error", () => {});
          res.on("close", () => {
            // complete: the terminating chunk arrived, so the client saw a clean end.
            if (!res.complete) done("cut-reported", "response aborted");
            else if (sawDone) done("ok");
            else done("cut-silent", "clean end without [DONE]");
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("client timeout")));
      req.on("error", (err) => done(chunks > 0 ? "cut-reported" : "failed", causeOf(err)));
      req.end(body);
    });
  }
}
