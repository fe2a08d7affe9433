// The flow-control tests' harness: the real build/filter.wasm in the host, snapshots pushed through the
// control path, requests sent with an objective and a fairness id, ticks on the virtual clock.
import assert from "node:assert/strict";
import { loadFilterPlugin } from "./filter-plugin.ts";
import type {
  EnvoyProcess,
  HeaderList,
  HttpStream,
  LocalReply,
  VirtualClock,
  WasmPlugin,
} from "../../host/index.ts";
import { snapshotBytesWith } from "./snapshot-fixture.ts";
import type { SnapshotFixture } from "./snapshot-fixture.ts";

export const TOKEN = "s3cret-token";
export const DEST = "x-gateway-destination-endpoint";
const enc = new TextEncoder();

export interface Held {
  stream: HttpStream;
  reply?: LocalReply;
  forwarded?: HeaderList;
  response?: HeaderList;
  upstream: Uint8Array[];
  ended: boolean;
  name: string;
}

export class Harness {
  generation = 1;
  constructor(
    readonly plugin: WasmPlugin,
    readonly clock: VirtualClock,
    readonly proc: EnvoyProcess,
  ) {}

  /** Pushes a snapshot (next generation) through the control path; 204 expected. */
  push(f: SnapshotFixture): void {
    const h = this.open("push", 0);
    h.stream.decodeHeaders(
      [
        [":method", "POST"],
        [":path", "/epp/v1/snapshot"],
        [":authority", "gw"],
        [":scheme", "http"],
        ["authorization", `Bearer ${TOKEN}`],
      ],
      false,
    );
    h.stream.decodeData(snapshotBytesWith({ generation: this.generation++, ...f }), true);
    h.stream.destroy();
    assert.equal(h.reply?.status, 204, `push refused: ${new TextDecoder().decode(h.reply?.body)}`);
  }

  open(name: string, worker: number): Held {
    const h = { name, upstream: [], ended: false } as Partial<Held> as Held;
    h.stream = this.plugin.newHttpStream(
      {
        forwardRequestHeaders: (hs: HeaderList) => (h.forwarded = hs),
        forwardRequestData: (d: Uint8Array) => void h.upstream.push(d.slice()),
        forwardResponseHeaders: (hs: HeaderList) => void (h.response = hs),
        forwardResponseData: () => {},
        localReply: (r: LocalReply) => (h.reply = r),
      },
      { worker },
    );
    return h;
  }

  /** A chat request with an objective and a fairness id; the body arrives in one chunk. */
  send(
    name: string,
    o: { objective?: string; fairness?: string; worker?: number; content?: string; path?: string } = {},
  ): Held {
    const h = this.open(name, o.worker ?? 0);
    const body = enc.encode(
      JSON.stringify({ model: "m", messages: [{ role: "user", content: o.content ?? name }] }),
    );
    const headers: HeaderList = [
      [":method", "POST"],
      [":path", o.path ?? "/v1/chat/completions"],
      [":authority", "gw"],
      [":scheme", "http"],
      ["content-type", "application/json"],
      ["content-length", String(body.length)],
    ];
    if (o.objective) headers.push(["x-gateway-inference-objective", o.objective]);
    if (o.fairness !== undefined) headers.push(["x-gateway-inference-fairness-id", o.fairness]);
    h.stream.decodeHeaders(headers, false);
    h.stream.decodeData(body, true);
    return h;
  }

  /** Ends a request the way the data plane does: a response if it went upstream, then destroy. */
  finish(h: Held): void {
    if (h.ended) return;
    h.ended = true;
    if (h.forwarded && !h.reply) h.stream.encodeHeaders([[":status", "200"]], true);
    h.stream.destroy();
  }

  tick(ms = 5): void {
    this.clock.advance(ms);
  }
}

export const OBJECTIVES = [
  { name: "critical", priority: 1 },
  { name: "standard", priority: 0 },
  { name: "sheddable", priority: -1 },
];

/** Two endpoints whose queues are at `waiting`; the default detector's limit is 5 (room = 6 − waiting each). */
export function pool(waiting: [number, number], extra: SnapshotFixture = {}): SnapshotFixture {
  return {
    endpoints: [
      { address: "10.0.0.1", waiting: waiting[0] },
      { address: "10.0.0.2", waiting: waiting[1] },
    ],
    objectives: OBJECTIVES,
    flowControl: {},
    ...extra,
  };
}

export async function harness(workers = 1, config: Record<string, unknown> = {}): Promise<Harness> {
  const { plugin, clock, proc } = await loadFilterPlugin(
    { controlToken: TOKEN, staleAfterMs: 0, randomSeed: 1, ...config },
    workers,
  );
  return new Harness(plugin, clock, proc);
}
