// What an engine needs from time: read it, and run a callback at a later engine time (ms).
export interface Clock {
  now(): number;
  schedule(atMs: number, fn: () => void): void;
  /** Seconds since the Unix epoch at engine time `ms` (for timestamp-valued metrics). */
  epochSeconds(ms: number): number;
}
