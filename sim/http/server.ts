// OpenAI-compatible HTTP front end for one simulated pod: /v1/completions, /v1/chat/completions
// (JSON or SSE), Anthropic's /v1/messages (JSON only), /v1/models, LoRA load/unload, /health, /metrics. Every response names the pod.
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { SubmitError, type Engine } from "../engine/engine.ts";
import type { EngineRequest, FinishReason } from "../engine/request.ts";
import { outputTokenText } from "../engine/tokenizer.ts";
import { sendError, sendJson } from "./errors.ts";
import { BadRequest, parseGeneration, parseMessages, type ParsedGeneration } from "./openai-request.ts";
import { requestedNames, restrictToNames } from "./name-filter.ts";

export interface PodServerOptions {
  engine: Engine;
  podName: string;
  namespace?: string;
  host?: string;
  /** 0 picks a free port. */
  port: number;
  maxBodyBytes?: number;
  /**
   * Serve HTTP/2 cleartext with prior knowledge instead of HTTP/1.1 (a pool with appProtocol kubernetes.io/h2c,
   * like vLLM behind an h2c-capable server). Responses then carry x-inference-http-version.
   */
  h2c?: boolean;
}

export interface PodServer {
  podName: string;
  port: number;
  engine: Engine;
  close(): Promise<void>;
}

export async function startPodServer(opts: PodServerOptions): Promise<PodServer> {
  const { engine } = opts;
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  let port = opts.port;
  const identity: Record<string, string> = {};
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    for (const [k, v] of Object.entries(identity)) res.setHeader(k, v);
    route(engine, req, res, maxBody).catch((err: unknown) => sendError(res, 500, String(err)));
  };
  const server = opts.h2c ? h2cServer(handler) : http.createServer(handler);
  if (!opts.h2c) (server as http.Server).keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  identity["x-inference-pod"] = opts.podName;
  identity["x-inference-port"] = String(port);
  identity["x-inference-namespace"] = opts.namespace ?? "default";
  // Lets a test see which protocol reached the pod.
  if (opts.h2c) identity["x-inference-http-version"] = "2.0";
  return {
    podName: opts.podName,
    port,
    engine,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * An HTTP/2 server without TLS (clients must speak HTTP/2 from the first byte) running the HTTP/1 handler through
 * node:http2's compatibility API. closeAllConnections() closes its sessions, as http.Server's does its sockets.
 */
function h2cServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): http2.Http2Server & { closeAllConnections(): void } {
  const sessions = new Set<http2.ServerHttp2Session>();
  // The compatibility request/response carry the members route() uses (url, method, headers, writeHead, …).
  const server = http2.createServer((req, res) =>
    handler(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse),
  );
  server.on("session", (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  return Object.assign(server, {
    closeAllConnections: () => {
      for (const s of sessions) s.destroy();
    },
  });
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) return null;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function route(
  engine: Engine,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  maxBody: number,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  const method = req.method ?? "GET";
  if (method === "GET") {
    if (path === "/health" || path === "/health/ready") {
      res.writeHead(200).end();
      return;
    }
    if (path === "/metrics") {
      const names = requestedNames(req.url ?? "");
      const text = names ? restrictToNames(engine.metricsText(), names) : engine.metricsText();
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(text);
      return;
    }
    if (path === "/v1/models") return sendJson(res, 200, modelList(engine));
    return sendError(res, 404, `no route for GET ${path}`);
  }
  if (method !== "POST") return sendError(res, 405, `method ${method} not allowed`);
  const raw = await readBody(req, maxBody);
  if (raw === null) return sendError(res, 400, `request body exceeds ${maxBody} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (err) {
    return sendError(res, 400, `malformed JSON body: ${(err as Error).message}`);
  }
  switch (path) {
    case "/v1/completions":
      return generate(engine, body, false, req, res);
    case "/v1/chat/completions":
      return generate(engine, body, true, req, res);
    case "/v1/messages":
      return anthropicMessage(engine, body, req, res);
    case "/v1/load_lora_adapter":
      return loadLora(engine, body, res);
    case "/v1/unload_lora_adapter":
      return unloadLora(engine, body, res);
    default:
      return sendError(res, 404, `no route for POST ${path}`);
  }
}

function modelList(engine: Engine): unknown {
  const created = Math.floor(engine.clock.epochSeconds(0));
  const card = (id: string, parent: string | null) => ({
    id,
    object: "model",
    created,
    owned_by: "vllm",
    root: parent ? `/adapters/${id}` : id,
    parent,
    max_model_len: engine.config.maxModelLen,
  });
  return {
    object: "list",
    data: [card(engine.model, null), ...[...engine.lora.known].map((a) => card(a, engine.model))],
  };
}

function loraName(body: unknown): string | null {
  const name = (body as { lora_name?: unknown } | null)?.lora_name;
  return typeof name === "string" && name !== "" ? name : null;
}

function loadLora(engine: Engine, body: unknown, res: http.ServerResponse): void {
  const name = loraName(body);
  if (!name) return sendError(res, 400, "lora_name is required", "lora_name");
  if (name === engine.model || !engine.lora.register(name)) {
    return sendError(res, 400, `The lora adapter '${name}' has already been loaded.`, "lora_name");
  }
  res
    .writeHead(200, { "content-type": "text/plain" })
    .end(`Success: LoRA adapter '${name}' added successfully.`);
}

function unloadLora(engine: Engine, body: unknown, res: http.ServerResponse): void {
  const name = loraName(body);
  if (!name) return sendError(res, 400, "lora_name is required", "lora_name");
  if (!engine.lora.unregister(name))
    return sendError(res, 404, `The lora adapter '${name}' cannot be found.`, "lora_name");
  res
    .writeHead(200, { "content-type": "text/plain" })
    .end(`Success: LoRA adapter '${name}' removed successfully.`);
}

function usage(r: EngineRequest): unknown {
  return {
    prompt_tokens: r.promptLen,
    completion_tokens: r.generated,
    total_tokens: r.promptLen + r.generated,
    prompt_tokens_details: { cached_tokens: Math.max(0, r.cachedTokens) },
  };
}

let idCounter = 0;

function generate(
  engine: Engine,
  body: unknown,
  chat: boolean,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  let p: ParsedGeneration;
  try {
    p = parseGeneration(body, chat);
  } catch (err) {
    if (err instanceof BadRequest) return sendError(res, 400, err.message, err.param);
    throw err;
  }
  const lora = p.model === engine.model ? undefined : p.model;
  const id = `${chat ? "chatcmpl" : "cmpl"}-${(++idCounter).toString(36)}-${Date.now().toString(36)}`;
  const created = Math.floor(Date.now() / 1000);
  const object = chat ? "chat.completion" : "text_completion";
  const salt = idCounter;
  let text = "";
  let done = false;
  const choiceDelta = (piece: string, first: boolean, finish: FinishReason | null) =>
    chat
      ? {
          index: 0,
          delta: first ? { role: "assistant", content: piece } : { content: piece },
          logprobs: null,
          finish_reason: finish,
        }
      : { index: 0, text: piece, logprobs: null, finish_reason: finish, stop_reason: null };
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id, object: chat ? "chat.completion.chunk" : "text_completion", created, model: p.model, choices, ...extra })}\n\n`;

  let request: EngineRequest;
  try {
    request = engine.submit(
      { id, promptTokenIds: p.promptTokenIds, maxTokens: p.maxTokens, lora },
      {
        onToken: (r, index) => {
          const piece = outputTokenText(salt, index);
          if (!p.stream) {
            text += piece;
            return;
          }
          const last = r.generated >= r.maxTokens;
          const finish = last ? (r.outputDrawn ? "stop" : "length") : null;
          res.write(chunk([choiceDelta(piece, index === 0, finish)]));
        },
        onDone: (r, reason) => {
          done = true;
          if (reason === "abort") return;
          if (p.stream) {
            if (p.includeUsage) res.write(chunk([], { usage: usage(r) }));
            res.end("data: [DONE]\n\n");
            return;
          }
          const choice = chat
            ? {
                index: 0,
                message: { role: "assistant", content: text },
                logprobs: null,
                finish_reason: reason,
              }
            : { index: 0, text, logprobs: null, finish_reason: reason, stop_reason: null };
          sendJson(res, 200, { id, object, created, model: p.model, choices: [choice], usage: usage(r) });
        },
      },
    );
  } catch (err) {
    if (err instanceof SubmitError) return sendError(res, err.status, err.message);
    throw err;
  }
  if (p.stream)
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      // HTTP/2 has no connection header (RFC 9113 §8.2.2).
      ...(req.httpVersionMajor === 2 ? {} : { connection: "keep-alive" }),
    });
  // A client that disconnects early frees its KV blocks at once.
  res.on("close", () => {
    if (!done) engine.abort(request.id);
  });
  req.on("error", () => undefined);
}

/** A non-streaming Anthropic Messages reply (`type: "message"`, one text block, input/output tokens). */
function anthropicMessage(
  engine: Engine,
  body: unknown,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  let p: ParsedGeneration;
  try {
    p = parseMessages(body);
  } catch (err) {
    if (err instanceof BadRequest) return sendError(res, 400, err.message, err.param);
    throw err;
  }
  const id = `msg_${(++idCounter).toString(36)}${Date.now().toString(36)}`;
  const salt = idCounter;
  let text = "";
  let done = false;
  let request: EngineRequest;
  try {
    request = engine.submit(
      {
        id,
        promptTokenIds: p.promptTokenIds,
        maxTokens: p.maxTokens,
        lora: p.model === engine.model ? undefined : p.model,
      },
      {
        onToken: (_r, index) => {
          text += outputTokenText(salt, index);
        },
        onDone: (r, reason) => {
          done = true;
          if (reason === "abort") return;
          sendJson(res, 200, {
            id,
            type: "message",
            role: "assistant",
            model: p.model,
            content: [{ type: "text", text }],
            stop_reason: reason === "length" ? "max_tokens" : "end_turn",
            stop_sequence: null,
            usage: {
              input_tokens: r.promptLen,
              output_tokens: r.generated,
              cache_read_input_tokens: Math.max(0, r.cachedTokens),
            },
          });
        },
      },
    );
  } catch (err) {
    if (err instanceof SubmitError) return sendError(res, err.status, err.message);
    throw err;
  }
  res.on("close", () => {
    if (!done) engine.abort(request.id);
  });
  req.on("error", () => undefined);
}
