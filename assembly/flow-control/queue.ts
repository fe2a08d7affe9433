// Flow control's per-worker queue (issue 22): one band per distinct priority, highest first; inside a
// band either round-robin over fairness ids with FCFS per id, or one FIFO (global-strict). Limits per
// band and in total (count, bytes held) and a TTL per band. Pure: no host calls.
//
// Items and flows live in parallel arrays reused through free lists, linked by index (-1 = none), so
// an operation allocates nothing once the arrays have grown, and each is O(1) (a band lookup is
// O(bands), bounded by the snapshot's objectives). Every index is checked before use: nothing here can
// trap, whatever order the filter calls it in.

import { FAIRNESS_GLOBAL_STRICT, FlowBand, FlowControlSpec } from "../snapshot/types.ts";

export const ENQUEUED: i32 = 0;
/** The band's count or byte limit would be passed. */
export const FULL_BAND: i32 = 1;
/** The queue's total count or byte limit would be passed. */
export const FULL_TOTAL: i32 = 2;
/** The stream is already queued (the caller's bug; refused rather than corrupt the lists). */
export const ALREADY_QUEUED: i32 = 3;

const NONE: i32 = -1;

/** One priority's queue and limits. */
export class Band {
  priority: i32 = 0;
  maxRequests: u32 = 0;
  maxBytes: f64 = 0;
  ttlMs: u32 = 0;
  count: i32 = 0;
  bytes: f64 = 0;
  /** Arrival order over all the band's items (head = oldest). */
  head: i32 = NONE;
  tail: i32 = NONE;
  /** Round robin: the flow served next; the ring is circular and doubly linked. */
  ring: i32 = NONE;
  /** fairness id → flow index, for flows holding items. */
  readonly flows: Map<string, i32> = new Map<string, i32>();
  // Counters for the metrics (monotonic per VM).
  queued: u64 = 0;
  dispatched: u64 = 0;
  expired: u64 = 0;
  rejected: u64 = 0;
  cancelled: u64 = 0;

  constructor(priority: i32) {
    this.priority = priority;
  }
}

export class FlowQueue {
  readonly bands: Band[] = [];
  fairness: u8 = 0;
  maxRequests: u32 = 0;
  maxBytes: f64 = 0;
  count: i32 = 0;
  bytes: f64 = 0;
  private spec: FlowControlSpec | null = null;

  // Items.
  private iStream: u32[] = [];
  private iBand: i32[] = [];
  private iFlow: i32[] = [];
  private iBytes: f64[] = [];
  private iAt: u64[] = [];
  private iDeadline: u64[] = [];
  private iPrev: i32[] = [];
  private iNext: i32[] = [];
  private iFPrev: i32[] = [];
  private iFNext: i32[] = [];
  private iLive: bool[] = [];
  private freeItem: i32 = NONE;
  private readonly byStream: Map<u32, i32> = new Map<u32, i32>();

  // Flows (one fairness id inside one band).
  private fId: string[] = [];
  private fBand: i32[] = [];
  private fHead: i32[] = [];
  private fTail: i32[] = [];
  private fPrev: i32[] = [];
  private fNext: i32[] = [];
  private freeFlow: i32 = NONE;

  /**
   * Takes a (new) FLOW_CONTROL section: limits change (they apply to arrivals: held items stay where they
   * are), and a band whose TTL changed has its held items' deadlines recomputed from their arrival with
   * the new TTL, so a shortened TTL answers them on time. Deadlines in a band then still grow with
   * arrival, which is what lets expired() look at each band's oldest item only.
   */
  configure(spec: FlowControlSpec): void {
    this.spec = spec;
    this.fairness = spec.fairness;
    this.maxRequests = spec.maxRequests;
    this.maxBytes = spec.maxBytes;
    for (let b = 0; b < this.bands.length; b++) {
      const band = unchecked(this.bands[b]);
      const ttl = band.ttlMs;
      this.limitsFor(band);
      if (band.ttlMs != ttl) this.redate(band);
    }
  }

  /** Every held item of `band` gets its deadline from its arrival and the band's TTL (O(band's items)). */
  private redate(band: Band): void {
    let i = band.head;
    let guard = band.count + 1;
    while (this.okItem(i) && guard-- > 0) {
      unchecked((this.iDeadline[i] = band.ttlMs != 0 ? unchecked(this.iAt[i]) + <u64>band.ttlMs : 0));
      i = unchecked(this.iNext[i]);
    }
  }

  private limitsFor(band: Band): void {
    const spec = this.spec;
    if (spec == null) return;
    let src: FlowBand = spec.defaultBand;
    for (let i = 0; i < spec.bands.length; i++) {
      const b = unchecked(spec.bands[i]);
      if (b.priority == band.priority) {
        src = b;
        break;
      }
    }
    band.maxRequests = src.maxRequests;
    band.maxBytes = src.maxBytes;
    band.ttlMs = src.ttlMs != 0 ? src.ttlMs : spec.defaultTtlMs;
  }

  /** The band of `priority`, created in order (highest first) on first use. */
  band(priority: i32): i32 {
    const bands = this.bands;
    let at = bands.length;
    for (let b = 0; b < bands.length; b++) {
      const p = unchecked(bands[b]).priority;
      if (p == priority) return b;
      if (p < priority) {
        at = b;
        break;
      }
    }
    const band = new Band(priority);
    this.limitsFor(band);
    bands.push(band);
    for (let k = bands.length - 1; k > at; k--) unchecked((bands[k] = bands[k - 1]));
    unchecked((bands[at] = band));
    // Items keep band indexes: shift those at or after the insertion point.
    for (let i = 0; i < this.iBand.length; i++) {
      if (unchecked(this.iLive[i]) && unchecked(this.iBand[i]) >= at) unchecked((this.iBand[i] += 1));
    }
    for (let f = 0; f < this.fBand.length; f++) {
      if (unchecked(this.fBand[f]) >= at) unchecked((this.fBand[f] += 1));
    }
    return at;
  }

  @inline private okItem(i: i32): bool {
    return i >= 0 && i < this.iLive.length && unchecked(this.iLive[i]);
  }

  @inline private okFlow(f: i32): bool {
    return f >= 0 && f < this.fHead.length;
  }

  @inline private okBand(b: i32): bool {
    return b >= 0 && b < this.bands.length;
  }

  /** Whether `stream` is queued. */
  has(stream: u32): bool {
    return this.byStream.has(stream);
  }

  /** The item of `stream`, or -1. */
  itemOf(stream: u32): i32 {
    return this.byStream.has(stream) ? this.byStream.get(stream) : NONE;
  }

  /** Would one more request of `bytes` in band `b` pass a limit? ENQUEUED when it fits. */
  fits(b: i32, bytes: f64): i32 {
    if (!this.okBand(b)) return FULL_BAND;
    const band = unchecked(this.bands[b]);
    if (band.maxRequests != 0 && <u32>band.count >= band.maxRequests) return FULL_BAND;
    if (band.maxBytes != 0 && band.bytes + bytes > band.maxBytes) return FULL_BAND;
    if (this.maxRequests != 0 && <u32>this.count >= this.maxRequests) return FULL_TOTAL;
    if (this.maxBytes != 0 && this.bytes + bytes > this.maxBytes) return FULL_TOTAL;
    return ENQUEUED;
  }

  /** Queues `stream`; ENQUEUED, or why not (the band's rejected counter counts a refusal). */
  enqueue(stream: u32, priority: i32, fairnessId: string, bytes: f64, nowMs: u64): i32 {
    if (this.byStream.has(stream)) return ALREADY_QUEUED;
    const b = this.band(priority);
    const why = this.fits(b, bytes);
    const band = unchecked(this.bands[b]);
    if (why != ENQUEUED) {
      band.rejected++;
      return why;
    }
    const i = this.allocItem();
    unchecked((this.iStream[i] = stream));
    unchecked((this.iBand[i] = b));
    unchecked((this.iBytes[i] = bytes));
    unchecked((this.iAt[i] = nowMs));
    unchecked((this.iDeadline[i] = band.ttlMs != 0 ? nowMs + <u64>band.ttlMs : 0));
    // Arrival list.
    unchecked((this.iPrev[i] = band.tail));
    unchecked((this.iNext[i] = NONE));
    if (this.okItem(band.tail)) unchecked((this.iNext[band.tail] = i));
    else band.head = i;
    band.tail = i;
    // Flow list (created and put last in the rotation when new).
    let f = band.flows.has(fairnessId) ? band.flows.get(fairnessId) : NONE;
    if (!this.okFlow(f)) {
      f = this.allocFlow(fairnessId, b);
      band.flows.set(fairnessId, f);
      this.ringInsert(band, f);
    }
    unchecked((this.iFlow[i] = f));
    const ft = unchecked(this.fTail[f]);
    unchecked((this.iFPrev[i] = ft));
    unchecked((this.iFNext[i] = NONE));
    if (this.okItem(ft)) unchecked((this.iFNext[ft] = i));
    else unchecked((this.fHead[f] = i));
    unchecked((this.fTail[f] = i));
    band.count++;
    band.bytes += bytes;
    band.queued++;
    this.count++;
    this.bytes += bytes;
    this.byStream.set(stream, i);
    return ENQUEUED;
  }

  /** The item to dispatch next (highest band; its rotation or its FIFO), or -1 when empty. */
  next(): i32 {
    for (let b = 0; b < this.bands.length; b++) {
      const band = unchecked(this.bands[b]);
      if (band.count == 0) continue;
      if (this.fairness == FAIRNESS_GLOBAL_STRICT) return band.head;
      const f = band.ring;
      if (this.okFlow(f)) return unchecked(this.fHead[f]);
      return band.head;
    }
    return NONE;
  }

  /**
   * The oldest item of any band whose deadline is at or before `nowMs`, or -1. A band's deadlines grow
   * with arrival (one TTL per band; configure() redates on a change), so its oldest item is the first due.
   */
  expired(nowMs: u64): i32 {
    for (let b = 0; b < this.bands.length; b++) {
      const h = unchecked(this.bands[b]).head;
      if (!this.okItem(h)) continue;
      const d = unchecked(this.iDeadline[h]);
      if (d != 0 && d <= nowMs) return h;
    }
    return NONE;
  }

  streamOf(i: i32): u32 {
    return this.okItem(i) ? unchecked(this.iStream[i]) : 0;
  }

  bandOf(i: i32): i32 {
    return this.okItem(i) ? unchecked(this.iBand[i]) : NONE;
  }

  priorityOf(i: i32): i32 {
    const b = this.bandOf(i);
    return this.okBand(b) ? unchecked(this.bands[b]).priority : 0;
  }

  bytesOf(i: i32): f64 {
    return this.okItem(i) ? unchecked(this.iBytes[i]) : 0;
  }

  enqueuedAt(i: i32): u64 {
    return this.okItem(i) ? unchecked(this.iAt[i]) : 0;
  }

  /** The fairness id item `i` was queued under ("" when none or not queued). */
  fairnessOf(i: i32): string {
    if (!this.okItem(i)) return "";
    const f = unchecked(this.iFlow[i]);
    return this.okFlow(f) ? unchecked(this.fId[f]) : "";
  }

  /** The oldest item of band `b`, or -1. */
  oldestOf(b: i32): i32 {
    if (!this.okBand(b)) return NONE;
    const h = unchecked(this.bands[b]).head;
    return this.okItem(h) ? h : NONE;
  }

  /**
   * Takes item `i` out (dispatched, expired, cancelled: the caller counts which). `served`: it was
   * dispatched, so its flow moves to the back of the rotation. False when `i` is not queued.
   */
  remove(i: i32, served: bool = false): bool {
    if (!this.okItem(i)) return false;
    const b = unchecked(this.iBand[i]);
    if (!this.okBand(b)) return false;
    const band = unchecked(this.bands[b]);
    // Arrival list.
    const p = unchecked(this.iPrev[i]);
    const n = unchecked(this.iNext[i]);
    if (this.okItem(p)) unchecked((this.iNext[p] = n));
    else band.head = n;
    if (this.okItem(n)) unchecked((this.iPrev[n] = p));
    else band.tail = p;
    // Flow list; a served flow goes to the back of the rotation, an emptied one leaves it.
    const f = unchecked(this.iFlow[i]);
    if (this.okFlow(f)) {
      const wasHead = unchecked(this.fHead[f]) == i;
      const fp = unchecked(this.iFPrev[i]);
      const fn = unchecked(this.iFNext[i]);
      if (this.okItem(fp)) unchecked((this.iFNext[fp] = fn));
      else unchecked((this.fHead[f] = fn));
      if (this.okItem(fn)) unchecked((this.iFPrev[fn] = fp));
      else unchecked((this.fTail[f] = fp));
      if (!this.okItem(unchecked(this.fHead[f]))) {
        this.ringRemove(band, f);
        const id = unchecked(this.fId[f]);
        if (band.flows.has(id)) band.flows.delete(id);
        this.releaseFlow(f);
      } else if (served && wasHead && band.ring == f) band.ring = unchecked(this.fNext[f]);
    }
    const bytes = unchecked(this.iBytes[i]);
    band.count--;
    band.bytes -= bytes;
    if (band.count <= 0) {
      band.count = 0;
      band.bytes = 0;
    }
    this.count--;
    this.bytes -= bytes;
    if (this.count <= 0) {
      this.count = 0;
      this.bytes = 0;
    }
    const s = unchecked(this.iStream[i]);
    if (this.byStream.has(s)) this.byStream.delete(s);
    unchecked((this.iLive[i] = false));
    unchecked((this.iNext[i] = this.freeItem));
    this.freeItem = i;
    return true;
  }

  private allocItem(): i32 {
    let i = this.freeItem;
    if (i >= 0 && i < this.iLive.length) {
      this.freeItem = unchecked(this.iNext[i]);
      unchecked((this.iLive[i] = true));
      return i;
    }
    i = this.iLive.length;
    this.iStream.push(0);
    this.iBand.push(NONE);
    this.iFlow.push(NONE);
    this.iBytes.push(0);
    this.iAt.push(0);
    this.iDeadline.push(0);
    this.iPrev.push(NONE);
    this.iNext.push(NONE);
    this.iFPrev.push(NONE);
    this.iFNext.push(NONE);
    this.iLive.push(true);
    return i;
  }

  private allocFlow(id: string, b: i32): i32 {
    let f = this.freeFlow;
    if (f >= 0 && f < this.fHead.length) {
      this.freeFlow = unchecked(this.fNext[f]);
    } else {
      f = this.fHead.length;
      this.fId.push("");
      this.fBand.push(NONE);
      this.fHead.push(NONE);
      this.fTail.push(NONE);
      this.fPrev.push(NONE);
      this.fNext.push(NONE);
    }
    unchecked((this.fId[f] = id));
    unchecked((this.fBand[f] = b));
    unchecked((this.fHead[f] = NONE));
    unchecked((this.fTail[f] = NONE));
    return f;
  }

  private releaseFlow(f: i32): void {
    unchecked((this.fId[f] = ""));
    unchecked((this.fBand[f] = NONE));
    unchecked((this.fHead[f] = NONE));
    unchecked((this.fTail[f] = NONE));
    unchecked((this.fPrev[f] = NONE));
    unchecked((this.fNext[f] = this.freeFlow));
    this.freeFlow = f;
  }

  /** Puts flow f last in the band's rotation (just before the flow served next). */
  private ringInsert(band: Band, f: i32): void {
    const r = band.ring;
    if (!this.okFlow(r)) {
      unchecked((this.fPrev[f] = f));
      unchecked((this.fNext[f] = f));
      band.ring = f;
      return;
    }
    const last = unchecked(this.fPrev[r]);
    unchecked((this.fPrev[f] = last));
    unchecked((this.fNext[f] = r));
    if (this.okFlow(last)) unchecked((this.fNext[last] = f));
    unchecked((this.fPrev[r] = f));
  }

  private ringRemove(band: Band, f: i32): void {
    const p = unchecked(this.fPrev[f]);
    const n = unchecked(this.fNext[f]);
    if (n == f || !this.okFlow(n) || !this.okFlow(p)) {
      if (band.ring == f) band.ring = NONE;
      return;
    }
    unchecked((this.fNext[p] = n));
    unchecked((this.fPrev[n] = p));
    if (band.ring == f) band.ring = n;
  }

  /** Flows holding items in band b (for tests and the status page). */
  flowCount(b: i32): i32 {
    return this.okBand(b) ? unchecked(this.bands[b]).flows.size : 0;
  }
}
