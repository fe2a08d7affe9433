// In-flight counts shared between the worker VMs of one Envoy (`sharedInflight`). Each worker sees only
// its own dispatches (inflight.ts); with several workers the others' dispatches since the last scrape are
// invisible and the pool looks emptier than it is. Each worker publishes its own per-endpoint counts under
// its own key in proxy-wasm shared data (one map per vm_id across workers, envoy-proxy-wasm.md §2), and a
// decision adds the other workers' records to its endpoints for the pick and takes them off after.
//
// One writer per key, so no CAS on the records. A record holds exactly what its writer's InflightSet
// counts — dispatches at or after each endpoint's scrape time — so the scrape rule holds for every
// worker's share. Records are bound to one snapshot (generation, createdAtMs, endpoint count) and a
// reader uses only records for the snapshot it routes on: a worker that died or went idle leaves counts
// that stop counting at the next snapshot. Endpoint i of a record is endpoint i of the pool view, which
// every worker builds the same way from the same snapshot.
//
// Workers find each other through a directory key (holder ids, appended with CAS); a reader re-reads it
// once per snapshot and at most once a second otherwise, and a worker missing from it (the create race: a set on an absent key ignores the
// CAS) adds itself again then. Anything in these keys that is not a well-formed record is ignored, and
// each count is clamped, so another plugin writing them cannot make a pick trap.

import { Endpoint, SchedulerConfig } from "./scheduling/types.ts";
import { getSharedDataAt, nowNanos, setSharedDataAt, setSharedDataPart, WASM_OK } from "./abi/host.ts";

const MAGIC: u32 = 0x31464e49; // "INF1"
/**
 * magic u32 · endpoint count u32 · generation u64 · createdAtMs u64 · entry count u32; then per endpoint
 * with a non-zero count: index u32, requests i32, prompt tokens i32.
 */
const HEADER: i32 = 28;
const ENTRY: i32 = 12;
/** Directory: count u32, then holder ids u64. Workers beyond this many are not shared (still route). */
const MAX_WORKERS: i32 = 64;
/** One worker's figures are clamped to this much, so hostile values cannot overflow a sum. */
const MAX_COUNT: i32 = 1 << 24;
const CAS_TRIES: i32 = 8;
/** A worker that registered after this one's last snapshot is found within this long (Envoy's clock). */
const DIRECTORY_REFRESH_MS: u64 = 1000;
/** A full directory's entry whose record is this much older than the current snapshot may be taken over. */
const STALE_WORKER_MS: u64 = 60_000;

/** The scheduler record's `sharedInflight` (1 on, 0 off); on when absent (docs/benchmarks.md measures it). */
export function sharedInflightOn(c: SchedulerConfig): bool {
  return c.param("sharedInflight", 1) != 0;
}

function clampCount(v: i32): i32 {
  return v < 0 ? 0 : v > MAX_COUNT ? MAX_COUNT : v;
}

export class SharedInflight {
  private readonly dirKey: ArrayBuffer;
  private ownKey: ArrayBuffer | null = null;
  /** The other workers' record keys, as of the last directory read. */
  private peers: ArrayBuffer[] = [];
  private record: ArrayBuffer = new ArrayBuffer(HEADER);
  private remoteRequests: Int32Array = new Int32Array(0);
  private remoteTokens: Int32Array = new Int32Array(0);
  /** Endpoints add() changed (their remote* entries non-zero until remove()). */
  private readonly touched: i32[] = [];
  /** The endpoints add() changed (null: nothing applied). */
  private appliedTo: Endpoint[] | null = null;
  /** Off while the pool routes on stale figures (counts then mean every open dispatch). */
  active: bool = false;
  /** A local count changed since the last publish. */
  dirty: bool = false;
  private generation: u64 = 0;
  private createdAtMs: u64 = 0;
  private count: i32 = 0;
  private directoryReadAtMs: u64 = 0;

  /** `prefix`: the pool's shared-data key prefix; `holder`: this worker's id (random, never 0). */
  constructor(
    private readonly prefix: string,
    private readonly holder: u64,
  ) {
    this.dirKey = String.UTF8.encode(prefix + "inflight.workers");
  }

  private keyFor(id: u64): ArrayBuffer {
    return String.UTF8.encode(this.prefix + "inflight." + id.toString(16));
  }

  /** Re-reads the directory (adding this worker when missing); O(workers), once per snapshot. */
  private readDirectory(): void {
    this.directoryReadAtMs = nowNanos() / 1_000_000;
    for (let t = 0; t < CAS_TRIES; t++) {
      const v = getSharedDataAt(this.dirKey);
      let n: i32 = 0;
      let cas: u32 = 0;
      let data: ArrayBuffer | null = null;
      if (v != null) {
        data = v.data;
        cas = v.cas;
        const len = data.byteLength;
        if (len >= 4) {
          n = <i32>min<u32>(load<u32>(changetype<usize>(data)), <u32>MAX_WORKERS);
          n = min(n, (len - 4) >> 3);
        }
      }
      const peers = new Array<ArrayBuffer>();
      let found = false;
      for (let i = 0; i < n; i++) {
        const id = load<u64>(changetype<usize>(data!) + 4 + ((<usize>i) << 3));
        if (id == this.holder) found = true;
        else if (id != 0) peers.push(this.keyFor(id));
      }
      this.peers = peers;
      if (found) return;
      if (n >= MAX_WORKERS) {
        // Full: VMs replaced over the process's life (a reloaded module) leave entries behind. Take the slot
        // of one whose record is gone or far older than this snapshot; a live worker that loses its slot
        // this way (idle on an old snapshot) takes one back at its next read.
        const slot = this.staleSlot(data!, n);
        if (slot < 0) return;
        const out = data!.slice(0);
        store<u64>(changetype<usize>(out) + 4 + ((<usize>slot) << 3), this.holder);
        if (setSharedDataAt(this.dirKey, out, cas) == WASM_OK) return;
        continue;
      }
      const out = new ArrayBuffer(4 + ((n + 1) << 3));
      const p = changetype<usize>(out);
      store<u32>(p, <u32>(n + 1));
      if (n > 0) memory.copy(p + 4, changetype<usize>(data!) + 4, (<usize>n) << 3);
      store<u64>(p + 4 + ((<usize>n) << 3), this.holder);
      // A set on an absent key ignores the CAS (two workers may both create it): the loser finds itself
      // missing at the next snapshot and adds itself again.
      if (setSharedDataAt(this.dirKey, out, v == null ? 0 : cas) == WASM_OK) return;
    }
  }

  /** A directory slot whose worker published nothing for STALE_WORKER_MS of snapshots, or -1. */
  private staleSlot(data: ArrayBuffer, n: i32): i32 {
    for (let i = 0; i < n; i++) {
      const id = load<u64>(changetype<usize>(data) + 4 + ((<usize>i) << 3));
      if (id == 0) return i;
      const v = getSharedDataAt(this.keyFor(id));
      if (v == null || v.data.byteLength < HEADER || load<u32>(changetype<usize>(v.data)) != MAGIC) return i;
      const at = load<u64>(changetype<usize>(v.data), 16);
      if (at + STALE_WORKER_MS < this.createdAtMs) return i;
    }
    return -1;
  }

  /** A new snapshot (after the local counts were rebased on it): re-read the directory, publish. */
  follow(live: Endpoint[], generation: u64, createdAtMs: u64): void {
    this.generation = generation;
    this.createdAtMs = createdAtMs;
    const n = live.length;
    this.count = n;
    if (this.remoteRequests.length != n) {
      this.remoteRequests = new Int32Array(n);
      this.remoteTokens = new Int32Array(n);
      this.record = new ArrayBuffer(HEADER + n * ENTRY);
    }
    if (this.ownKey == null) this.ownKey = this.keyFor(this.holder);
    this.active = true;
    this.readDirectory();
    this.publish(live);
  }

  /**
   * Writes this worker's counts (call only while no peer figures are applied): O(endpoints) to find the
   * non-zero ones, one set of O(non-zero) bytes — usually a few, since only dispatches after the scrape count.
   */
  publish(live: Endpoint[]): void {
    const key = this.ownKey;
    if (key == null || !this.active || live.length != this.count || this.appliedTo != null) return;
    this.dirty = false;
    const p = changetype<usize>(this.record);
    let q = p + <usize>HEADER;
    let m: u32 = 0;
    for (let i = 0; i < live.length; i++) {
      const e = unchecked(live[i]);
      if (e.inflightRequests == 0 && e.inflightPromptTokens == 0) continue;
      store<u32>(q, <u32>i);
      store<i32>(q, e.inflightRequests, 4);
      store<i32>(q, e.inflightPromptTokens, 8);
      q += <usize>ENTRY;
      m++;
    }
    store<u32>(p, MAGIC);
    store<u32>(p, <u32>this.count, 4);
    store<u64>(p, this.generation, 8);
    store<u64>(p, this.createdAtMs, 16);
    store<u32>(p, m, 24);
    setSharedDataPart(key, this.record, HEADER + <i32>m * ENTRY);
  }

  /** Adds the other workers' counts for this snapshot to `eps`; one get per peer. Undo with remove(). */
  add(eps: Endpoint[]): void {
    if (!this.active || this.appliedTo != null || eps.length != this.count) return;
    if (nowNanos() / 1_000_000 - this.directoryReadAtMs >= DIRECTORY_REFRESH_MS) this.readDirectory();
    const n = this.count;
    const reqs = this.remoteRequests;
    const toks = this.remoteTokens;
    const touched = this.touched;
    for (let k = 0; k < this.peers.length; k++) {
      const v = getSharedDataAt(unchecked(this.peers[k]));
      if (v == null) continue;
      const len = v.data.byteLength;
      if (len < HEADER) continue;
      const p = changetype<usize>(v.data);
      const m = load<u32>(p, 24);
      if (
        load<u32>(p) != MAGIC ||
        load<u32>(p, 4) != <u32>n ||
        load<u64>(p, 8) != this.generation ||
        load<u64>(p, 16) != this.createdAtMs ||
        m > <u32>n ||
        len != HEADER + <i32>m * ENTRY
      )
        continue;
      let q = p + <usize>HEADER;
      for (let j: u32 = 0; j < m; j++) {
        const i = load<u32>(q);
        const r = clampCount(load<i32>(q, 4));
        const t = clampCount(load<i32>(q, 8));
        q += <usize>ENTRY;
        if (i >= <u32>n || (r == 0 && t == 0)) continue;
        const was = unchecked(reqs[i]) | unchecked(toks[i]);
        if (was == 0) touched.push(<i32>i);
        unchecked((reqs[i] = min(MAX_COUNT, unchecked(reqs[i]) + r)));
        unchecked((toks[i] = min(MAX_COUNT, unchecked(toks[i]) + t)));
      }
    }
    if (touched.length == 0) return;
    for (let k = 0; k < touched.length; k++) {
      const i = unchecked(touched[k]);
      const e = unchecked(eps[i]);
      e.inflightRequests += unchecked(reqs[i]);
      e.inflightPromptTokens += unchecked(toks[i]);
    }
    this.appliedTo = eps;
  }

  /** Takes off what add() put on (the pick's own dispatch stays); O(endpoints touched). */
  remove(): void {
    const eps = this.appliedTo;
    if (eps == null) return;
    this.appliedTo = null;
    const reqs = this.remoteRequests;
    const toks = this.remoteTokens;
    const touched = this.touched;
    for (let k = 0; k < touched.length; k++) {
      const i = unchecked(touched[k]);
      const e = unchecked(eps[i]);
      e.inflightRequests -= unchecked(reqs[i]);
      e.inflightPromptTokens -= unchecked(toks[i]);
      unchecked((reqs[i] = 0));
      unchecked((toks[i] = 0));
    }
    touched.length = 0;
  }
}
