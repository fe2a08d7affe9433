// Seeded pseudo-random numbers for pickers, tie-breaks and weighted draws: xorshift64* seeded through
// splitmix64, so that nearby seeds give unrelated streams. Deterministic given the seed (tests rely on it).

export class Rng {
  private s: u64;

  constructor(seed: u64) {
    this.s = 1;
    this.reseed(seed);
  }

  reseed(seed: u64): void {
    let z = seed + 0x9e3779b97f4a7c15;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    z ^= z >> 31;
    this.s = z == 0 ? 0x2545f4914f6cdd1d : z; // xorshift must never hold state 0
  }

  nextU64(): u64 {
    let x = this.s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    this.s = x;
    return x * 0x2545f4914f6cdd1d;
  }

  /** Uniform in [0, 1) with 53 bits. */
  nextF64(): f64 {
    return <f64>(this.nextU64() >> 11) * (1.0 / 9007199254740992.0);
  }

  /** Uniform integer in [0, n); 0 when n ≤ 0. */
  nextBelow(n: i32): i32 {
    if (n <= 0) return 0;
    return <i32>((this.nextU64() >> 33) % <u64>n);
  }
}

/** splitmix64's finaliser: a cheap, well-mixed 64-bit hash of a 64-bit value. */
export function mix64(x: u64): u64 {
  let z = x + 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

/** FNV-1a over a string's UTF-16 code units (ASCII host:port strings hash the same as their bytes). */
export function hashString(s: string): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0, n = s.length; i < n; i++) {
    h ^= <u64>s.charCodeAt(i);
    h *= 0x100000001b3;
  }
  return mix64(h);
}
