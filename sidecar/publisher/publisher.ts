// Pushes each pool's latest snapshot to every Envoy target's control path.
// Per (target, pool) only the newest snapshot matters: while a push is in flight, newer snapshots replace
// the pending one instead of queueing, so a slow or dead target never delays the others and never builds
// a backlog. Failures retry with capped exponential backoff.
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
}

export interface PublisherOptions {
  controlPath: string;
  token: string;
  timeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
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
}

interface Pending {
  bytes: Uint8Array;
  generation: bigint;
  builtAt: number;
}

class Slot {
  pending?: Pending;
  inFlight = false;
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
    // A slot waiting out a backoff keeps waiting; it will send the newest snapshot when the timer fires.
    if (!slot.inFlight && !slot.timer) void this.drain(slot);
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
        st.lastSuccessAt = st.lastAttemptAt;
        if (result.outcome === "ok") st.ackedGeneration = snap.generation.toString();
        st.heldGeneration = result.outcome === "superseded" ? result.remoteGeneration?.toString() : undefined;
        continue;
      }
      st.consecutiveFailures++;
      // A snapshot the filter rejected as corrupt will not get better by resending the same bytes.
      if (result.outcome !== "rejected") slot.pending ??= snap;
      if (slot.pending) {
        const delay = Math.min(
          this.opts.maxBackoffMs,
          this.opts.initialBackoffMs * 2 ** Math.min(st.consecutiveFailures - 1, 16),
        );
        slot.timer = setTimeout(
          () => {
            slot.timer = undefined;
            void this.drain(slot);
          },
          delay * (0.8 + 0.4 * Math.random()),
        );
        slot.timer.unref();
      }
      return;
    }
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
      };
    }
  }
}

function slotKey(t: PublishTarget, pool: string): string {
  return `${t.id}\u0000${pool}`;
}
