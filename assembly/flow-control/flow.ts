// A plugin's flow-control state in one worker VM, and the pool's room shared by the workers.
//
// Room. The saturation detector says how many more requests the pool takes before it calls it saturated
// (SaturationDetector.headroom, over the snapshot's figures). Workers share no memory, and each would
// spend all of that headroom on its own. So every admission under flow control — a direct one or a
// dispatch from the queue — takes its unit from one shared-data record (`<prefix>fc.taken`: generation
// u64, taken u32), updated with compare-and-swap (Envoy's shared data: one mutex, cas per key,
// envoy-proxy-wasm.md §2). The record counts from the snapshot generation it names: the first worker to
// act on a newer snapshot starts it again at 0. A worker also credits itself with the requests that
// finished on it since that generation (each frees a place the snapshot still counts as taken).
// Over-admission is therefore bounded by the completions credited (a request that finished on one
// worker is credited to that worker only) and by a record lost to a first-create race (the ABI creates a
// new key whatever the cas), see docs/architecture.md "Flow control".

import { getSharedDataAt, setSharedDataAt, WASM_CAS_MISMATCH, WASM_OK } from "../abi/host.ts";
import { FlowControlSpec, Snapshot } from "../snapshot/types.ts";
import { FlowQueue } from "./queue.ts";

/** Tick period while something is queued. */
export const FLOW_TICK_MS: u32 = 5;
/** CAS attempts per reservation before giving up for this tick. */
const CAS_TRIES: i32 = 4;

export class FlowState {
  readonly queue: FlowQueue = new FlowQueue();
  /** The snapshot's FLOW_CONTROL section; null = flow control off. */
  spec: FlowControlSpec | null = null;
  private crc: u32 = 0;
  /** The snapshot generation the room and completions count from. */
  generation: u64 = 0;
  /** Requests that finished on this worker since `generation` was adopted. */
  completed: i32 = 0;
  /** Completions already spent as room. */
  creditsUsed: i32 = 0;
  /** This root's tick runs at FLOW_TICK_MS for the queue. */
  ticking: bool = false;
  /** Pull mode: when the next pull is due (the flow tick runs faster than the pull interval). */
  pullDueMs: u64 = 0;
  private readonly takenKey: ArrayBuffer;
  private readonly record: ArrayBuffer = new ArrayBuffer(12);

  constructor(keyPrefix: string) {
    this.takenKey = String.UTF8.encode(keyPrefix + "fc.taken");
  }

  /** Follows the snapshot: its FLOW_CONTROL section (limits), and its generation (room counts afresh). */
  follow(s: Snapshot | null): void {
    if (s == null) return;
    const spec = s.flowControl;
    if (spec == null) this.spec = null;
    else if (this.spec == null || spec.crc != this.crc || this.spec !== spec) {
      this.spec = spec;
      this.crc = spec.crc;
      this.queue.configure(spec);
    }
    if (s.generation != this.generation) {
      this.generation = s.generation;
      this.completed = 0;
      this.creditsUsed = 0;
    }
  }

  @inline get on(): bool {
    return this.spec != null;
  }

  /** A request admitted on this worker has finished. */
  noteCompleted(): void {
    if (this.completed < i32.MAX_VALUE) this.completed++;
  }

  /**
   * Takes up to `want` admissions out of `headroom` (the detector's, for this.generation), counting the
   * other workers' takes; completions on this worker add to the room. Returns how many were granted.
   */
  reserve(headroom: i32, want: i32): i32 {
    if (want <= 0) return 0;
    const credit = this.completed - this.creditsUsed;
    for (let t = 0; t < CAS_TRIES; t++) {
      const v = getSharedDataAt(this.takenKey);
      let taken: i64 = 0;
      let cas: u32 = 0;
      if (v != null && v.data.byteLength == 12) {
        const p = changetype<usize>(v.data);
        const gen = load<u64>(p);
        // Another worker already counts from a newer snapshot: this one catches up at its next look.
        if (gen > this.generation) return 0;
        if (gen == this.generation) taken = <i64>load<u32>(p, 8);
        cas = v.cas;
      }
      const room = <i64>headroom + <i64>credit - taken;
      const grant = <i32>min<i64>(<i64>want, room);
      if (grant <= 0) return 0;
      // Credits are spent first and do not use the shared record.
      const fromCredit = min(grant, credit > 0 ? credit : 0);
      const shared = grant - fromCredit;
      if (shared == 0) {
        this.creditsUsed += fromCredit;
        return grant;
      }
      const p = changetype<usize>(this.record);
      store<u64>(p, this.generation);
      store<u32>(p, <u32>min<i64>(taken + <i64>shared, <i64>u32.MAX_VALUE), 8);
      const r = setSharedDataAt(this.takenKey, this.record, cas);
      if (r == WASM_OK) {
        this.creditsUsed += fromCredit;
        return grant;
      }
      if (r != WASM_CAS_MISMATCH) return 0;
    }
    return 0;
  }
}
