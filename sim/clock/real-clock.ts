// Wall clock, optionally sped up: engine time = wall time × timeScale. With timeScale 100 a 10 ms
// decode step takes 0.1 ms of wall time, so HTTP tests finish quickly.
import type { Clock } from "./clock.ts";

export class RealClock implements Clock {
  private readonly timeScale: number;
  private readonly startWall = performance.now();
  private readonly startEpochS = Date.now() / 1000;
  private readonly timers = new Set<NodeJS.Timeout | NodeJS.Immediate>();
  private stopped = false;

  constructor(timeScale = 1) {
    if (!(timeScale > 0)) throw new Error(`time scale must be > 0, got ${timeScale}`);
    this.timeScale = timeScale;
  }

  now(): number {
    return (performance.now() - this.startWall) * this.timeScale;
  }

  epochSeconds(ms: number): number {
    return this.startEpochS + ms / this.timeScale / 1000;
  }

  schedule(atMs: number, fn: () => void): void {
    if (this.stopped) return;
    const delayWall = (atMs - this.now()) / this.timeScale;
    if (delayWall < 0.5) {
      const h = setImmediate(() => {
        this.timers.delete(h);
        fn();
      });
      this.timers.add(h);
    } else {
      const h = setTimeout(() => {
        this.timers.delete(h);
        fn();
      }, delayWall);
      this.timers.add(h);
    }
  }

  /** Cancel every pending callback (server shutdown). */
  stop(): void {
    this.stopped = true;
    for (const h of this.timers) {
      clearTimeout(h as NodeJS.Timeout);
      clearImmediate(h as NodeJS.Immediate);
    }
    this.timers.clear();
  }
}
