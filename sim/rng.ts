// Seeded pseudo-random numbers for all the TypeScript code (simulator, benchmarks, load generator,
// tests): the same seed gives the same sequence on every run and machine, so a run or a failure replays.

/** mulberry32: a uniform stream in [0, 1) from a 32-bit seed (the seed is taken `>>> 0`). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The distributions the simulator and the workloads draw, over one mulberry32 stream. */
export class Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number;

  constructor(seed: number) {
    // Seed 0 stands for a fixed non-zero seed, so every recorded seed keeps its sequence.
    this.next = mulberry32(seed >>> 0 || 0x9e3779b9);
  }

  int(minInclusive: number, maxInclusive: number): number {
    return minInclusive + Math.floor(this.next() * (maxInclusive - minInclusive + 1));
  }

  normal(): number {
    // Box-Muller; 1 - next() keeps the log argument away from zero.
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
  }

  /** Log-normal with the given mean and sigma of the underlying normal. */
  logNormal(mean: number, sigma: number): number {
    const mu = Math.log(mean) - (sigma * sigma) / 2;
    return Math.exp(mu + sigma * this.normal());
  }

  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
}
