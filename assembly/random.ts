// xorshift64* — a small, fast generator for tie-breaks; seeded once per VM.

let state: u64 = 0x9e3779b97f4a7c15;

export function seedRandom(seed: u64): void {
  // Mix the seed so small seeds (0, 1, 2…) still give well-spread streams; the state must not be 0.
  let z = seed + 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  z ^= z >> 31;
  state = z != 0 ? z : 0x9e3779b97f4a7c15;
}

export function nextRandom(): u64 {
  let x = state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  state = x;
  return x * 0x2545f4914f6cdd1d;
}

/** Uniform integer in [0, n) for n ≥ 1 (the modulo bias is negligible for endpoint counts). */
export function randomBelow(n: u32): u32 {
  return <u32>((nextRandom() >> 32) % <u64>n);
}
