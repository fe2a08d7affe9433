// Pushes each pool's latest snapshot to every Envoy target's control path.
// Per (target, pool) only the newest snapshot matters: while a push is in flight, newer snapshots replace
// the pending one instead of queueing, so a slow or dead target never delays the others and never builds
// a backlog. A target that answers badly is retried with capped exponential backoff. A target that cannot
// be reached (a restarting Envoy) is watched with a bare TCP connect every probeIntervalMs instead, and
// pushed to as soon as a connect succeeds: a restarted Envoy gets its first snapshot within about one probe
// interval of listening, while a long-dead target costs one SYN per interval and never a snapshot upload.
import net from "node:net";
import { Agent, request } from "undici";

export interface PublishTarget {
  /** Stable id, e.g. "static:http://127.0.0.1:8081" or "pod:envoy-abc". */
  id: string;
  /** Base URL of a listener that runs the filter, e.g. http://10.0.0.5:8081. */
  url: string;
}

export type PushOutcome = "ok" | "superseded" | "rejected" | "unauthorized" | "error";

export interface PushResult {
  target: string;
  pool: string;
  generation: bigint;
  outcome: PushOutcome;
  status?: number;
  error?: string;
  latencyMs: number;
  /** The generation the target reports holding (x-epp-snapshot-generation), when it says. */
  remoteGeneration?: bigint;
  /** The push failed for want of a connection (the target is down or restarting). */
  unreachable?: boolean;
}

export interface PublisherOptions {
  controlPath: string;
  token: string;
  timeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often an unreachable target is probed with a TCP connect (default 100 ms). */
  probeIntervalMs?: number;
  /** How long one probe may wait for its connect (default 1000 ms; a blackholed target). */
  probeTimeoutMs?: number;
  onResult?: (r: PushResult) => void;
  now?: () => number;
}

export interface TargetStatus {
  target: string;
  url: string;
  pool: string;
  lastOutcome?: PushOutcome;
  lastStatus?: number;
  lastError?: string;
  lastSuccessAt?: number;
  lastAttemptAt?: number;
  ackedGeneration?: string;
  /** After a 409: the generation the target holds instead of ours. */
  heldGeneration?: string;
  consecutiveFailures: number;
  /** The last failure was a connection failure: the target is probed, not pushed to, until it accepts. */
  unreachable?: boolean;
}

interface Pending {
  bytes: Uint8Array;
  generation: bigint;
  builtAt: number;
}

class Slot {
  pending?: Pending;
  inFlight = false;
  /** A connect probe is running (the target was unreachable); its end decides what comes next. */
  probing = false;
  timer?: NodeJS.Timeout;
  status: TargetStatus;
  constructor(
    readonly target: PublishTarget,
    readonly pool: string,
  ) {
    this.status = { target: target.id, url: target.url, pool, consecutiveFailures: 0 };
  }
}

export class Publisher {
  private readonly agent: Agent;
  private readonly slots = new Map<string, Slot>();
  private targets: PublishTarget[] = [];
  private readonly latest = new Map<string, Pending>();
  private stopped = false;
  private readonly opts: Required<Omit<PublisherOptions, "onResult">> & Pick<PublisherOptions, "onResult">;

  constructor(options: PublisherOptions) {
    this.opts = {
      timeoutMs: 2000,
      initialBackoffMs: 100,
      maxBackoffMs: 5000,
      probeIntervalMs: 100,
      probeTimeoutMs: 1000,
      now: Date.now,
      ...options,
    };
    this.agent = new Agent({ keepAliveTimeout: 30_000, connections: 4 });
  }

  /** Replaces the target set; new targets immediately get every pool's latest snapshot. */
  setTargets(targets: PublishTarget[]): void {
    const ids = new Set(targets.map((t) => t.id));
    for (const [key, slot] of this.slots) {
      if (!ids.has(slot.target.id)) {
        clearTimeout(slot.timer);
        this.slots.delete(key);
      }
    }
    this.targets = targets;
    for (const [pool, snap] of this.latest) {
      for (const t of targets) this.enqueue(t, pool, snap);
    }
  }

  /** Offers a new snapshot for a pool to every target. */
  publish(pool: string, bytes: Uint8Array, generation: bigint): void {
    const snap: Pending = { bytes, generation, builtAt: this.opts.now() };
    this.latest.set(pool, snap);
    for (const t of this.targets) this.enqueue(t, pool, snap);
  }

  /** Envoy instances snapshots go to (each has its own shared data, so its own placements). */
  targetCount(): number {
    return this.targets.length;
  }

  status(): TargetStatus[] {
    return [...this.slots.values()].map((s) => ({ ...s.status }));
  }

  /** True when every target has acknowledged at least one snapshot of every pool. */
  allTargetsAcked(): boolean {
    if (this.targets.length === 0) return false;
    for (const t of this.targets) {
      for (const pool of this.latest.keys()) {
        if (this.slots.get(slotKey(t, pool))?.status.lastSuccessAt === undefined) return false;
      }
    }
    return this.latest.size > 0;
  }

  async close(): Promise<void> {
    this.stopped = true;
    for (const s of this.slots.values()) clearTimeout(s.timer);
    await this.agent.close();
  }

  private enqueue(target: PublishTarget, pool: string, snap: Pending): void {
    const key = slotKey(target, pool);
    let slot = this.slots.get(key);
    if (!slot) {
      slot = new Slot(target, pool);
      this.slots.set(key, slot);
    }
    slot.pending = snap;
    // A slot waiting out a backoff or a probe keeps waiting; it then sends the newest snapshot.
    if (!slot.inFlight && !slot.timer && !slot.probing) void this.drain(slot);
  }

  private async drain(slot: Slot): Promise<void> {
    while (!this.stopped && slot.pending && this.slots.get(slotKey(slot.target, slot.pool)) === slot) {
      const snap = slot.pending;
      slot.pending = undefined;
      slot.inFlight = true;
      const result = await this.push(slot, snap);
      slot.inFlight = false;
      this.opts.onResult?.(result);
      const st = slot.status;
      st.lastOutcome = result.outcome;
      st.lastStatus = result.status;
      st.lastError = result.error;
      st.lastAttemptAt = this.opts.now();
      if (result.outcome === "ok" || result.outcome === "superseded") {
        st.consecutiveFailures = 0;
        st.unreachable = undefined;
        st.lastSuccessAt = st.lastAttemptAt;
        if (result.outcome === "ok") st.ackedGeneration = snap.generation.toString();
        st.heldGeneration = result.outcome === "superseded" ? result.remoteGeneration?.toString() : undefined;
        continue;
      }
      st.consecutiveFailures++;
      // A snapshot the filter rejected as corrupt will not get better by resending the same bytes.
      if (result.outcome !== "rejected") slot.pending ??= snap;
      if (!slot.pending) return;
      if (result.unreachable) {
        st.unreachable = true;
        // The first failure may be a keep-alive socket the old process left behind: probe at once.
        this.probe(slot, st.consecutiveFailures === 1 ? 0 : this.opts.probeIntervalMs);
        return;
      }
      st.unreachable = undefined;
      const delay = Math.min(
        this.opts.maxBackoffMs,
        this.opts.initialBackoffMs * 2 ** Math.min(st.consecutiveFailures - 1, 16),
      );
      this.schedule(slot, delay * (0.8 + 0.4 * Math.random()), () => void this.drain(slot));
      return;
    }
  }

  private schedule(slot: Slot, delayMs: number, fire: () => void): void {
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      fire();
    }, delayMs);
    slot.timer.unref();
  }

  /** Connects (and closes) until the target accepts, then pushes the newest pending snapshot. */
  private probe(slot: Slot, delayMs: number): void {
    this.schedule(slot, delayMs, () => {
      if (this.stopped || this.slots.get(slotKey(slot.target, slot.pool)) !== slot) return;
      slot.probing = true;
      void tcpConnects(slot.target.url, this.opts.probeTimeoutMs).then((up) => {
        slot.probing = false;
        if (this.stopped || this.slots.get(slotKey(slot.target, slot.pool)) !== slot) return;
        if (up) void this.drain(slot);
        else this.probe(slot, this.opts.probeIntervalMs);
      });
    });
  }

  private async push(slot: Slot, snap: Pending): Promise<PushResult> {
    const started = performance.now();
    const base = { target: slot.target.id, pool: slot.pool, generation: snap.generation };
    try {
      const res = await request(new URL(this.opts.controlPath, slot.target.url), {
        method: "POST",
        dispatcher: this.agent,
        headers: {
          authorization: `Bearer ${this.opts.token}`,
          "content-type": "application/octet-stream",
        },
        body: snap.bytes,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
      const text = await res.body.text();
      const latencyMs = performance.now() - started;
      const status = res.statusCode;
      if (status === 204 || status === 200) return { ...base, outcome: "ok", status, latencyMs };
      // 409: the target already holds a newer generation (another sidecar replica, or a restart race).
      if (status === 409) {
        const header = res.headers["x-epp-snapshot-generation"];
        const remote = typeof header === "string" && /^[0-9]+$/.test(header) ? BigInt(header) : undefined;
        return { ...base, outcome: "superseded", status, latencyMs, remoteGeneration: remote };
      }
      if (status === 401) return { ...base, outcome: "unauthorized", status, error: text, latencyMs };
      if (status === 400) return { ...base, outcome: "rejected", status, error: text, latencyMs };
      return { ...base, outcome: "error", status, error: text.slice(0, 200), latencyMs };
    } catch (err) {
      return {
        ...base,
        outcome: "error",
        error: (err as Error).message,
        latencyMs: performance.now() - started,
        ...(isConnectionFailure(err) ? { unreachable: true } : {}),
      };
    }
  }
}

// No HTTP answer because there was no connection (refused, reset, closed before a response, no route):
// a restarting Envoy. A target that accepts and then does not answer in time is not one (backoff).
const CONNECTION_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function isConnectionFailure(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; i++) {
    if (typeof e.code === "string" && CONNECTION_ERRORS.has(e.code)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** True when a TCP connection to the URL's host and port opens within `timeoutMs` (then closed at once). */
export function tcpConnects(url: string, timeoutMs: number): Promise<boolean> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.unref(); // a probe never keeps a stopping process alive
    const done = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

function slotKey(t: PublishTarget, pool: string): string {
  return `${t.id}\u0000${pool}`;
}
