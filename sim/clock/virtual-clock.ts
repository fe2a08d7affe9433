// Discrete-event loop in virtual time: no sleeping, events run in (time, insertion) order.
// One clock can drive many engines (pods) plus a workload generator.
import type { Clock } from "./clock.ts";

export class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private times: number[] = [];
  private seqs: number[] = [];
  private fns: (() => void)[] = [];
  private readonly epochStartS: number;

  constructor(epochStartS = 1_800_000_000) {
    this.epochStartS = epochStartS;
  }

  now(): number {
    return this.t;
  }

  epochSeconds(ms: number): number {
    return this.epochStartS + ms / 1000;
  }

  get pending(): number {
    return this.times.length;
  }

  schedule(atMs: number, fn: () => void): void {
    const at = atMs < this.t ? this.t : atMs;
    // Binary min-heap on (time, seq) held in three parallel arrays.
    const times = this.times;
    const seqs = this.seqs;
    const fns = this.fns;
    const s = this.seq++;
    let i = times.length;
    times.push(at);
    seqs.push(s);
    fns.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p] < at || (times[p] === at && seqs[p] < s)) break;
      times[i] = times[p];
      seqs[i] = seqs[p];
      fns[i] = fns[p];
      i = p;
    }
    times[i] = at;
    seqs[i] = s;
    fns[i] = fn;
  }

  /** Run events until none is left at or before `untilMs`; the clock then reads `untilMs`. */
  runUntil(untilMs: number): void {
    while (this.times.length > 0 && this.times[0] <= untilMs) {
      const fn = this.pop();
      fn();
    }
    if (untilMs > this.t) this.t = untilMs;
  }

  /** Run until no event is left (or `maxEvents` ran). */
  runAll(maxEvents = Infinity): void {
    let n = 0;
    while (this.times.length > 0 && n++ < maxEvents) this.pop()();
  }

  private pop(): () => void {
    const times = this.times;
    const seqs = this.seqs;
    const fns = this.fns;
    const top = fns[0];
    this.t = times[0];
    const lastT = times.pop() as number;
    const lastS = seqs.pop() as number;
    const lastF = fns.pop() as () => void;
    const n = times.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && (times[r] < times[l] || (times[r] === times[l] && seqs[r] < seqs[l]))) c = r;
        if (lastT < times[c] || (lastT === times[c] && lastS < seqs[c])) break;
        times[i] = times[c];
        seqs[i] = seqs[c];
        fns[i] = fns[c];
        i = c;
      }
      times[i] = lastT;
      seqs[i] = lastS;
      fns[i] = lastF;
    }
    return top;
  }
}
