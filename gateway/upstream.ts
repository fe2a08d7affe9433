// What an upstream attempt (Envoy's UpstreamRequest) offers the router and needs from it, over HTTP/1.1
// (router.ts) or HTTP/2 (upstream-h2.ts): kept apart so neither attempt module imports the router.
import type { GatewayStats } from "./stats.ts";
import type { ResetReason } from "./retry.ts";
import type { HeaderList } from "../host/index.ts";

/** The router's settings an attempt reads. */
export interface AttemptOptions {
  connectTimeoutMs: number;
  upstreamTimeoutMs: number;
  stats: GatewayStats;
  log?: (obj: object, msg: string) => void;
}

/** The parts of an upstream response the router reads: http.IncomingMessage, or the HTTP/2 adapter. */
export interface UpstreamResponse {
  readonly statusCode?: number;
  readonly rawHeaders: string[];
  /** The whole body arrived. */
  readonly complete: boolean;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "end" | "close" | "error", listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

export interface AttemptEvents {
  onResponse(res: UpstreamResponse): void;
  onFailure(reason: ResetReason, transportFailure: string, requestStarted: boolean): void;
  onTimeout(): void;
}

/** One attempt on the wire (Envoy's UpstreamRequest), over HTTP/1.1 or HTTP/2. */
export interface Upstream {
  /** False when the upstream's write buffer is full: the caller stops reading until `onDrain`. */
  write(chunk: Uint8Array): boolean;
  onDrain(cb: () => void): void;
  end(trailers?: HeaderList): void;
  complete(): void;
  destroy(): void;
}
