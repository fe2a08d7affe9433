// xxHash64 (Yann Collet's XXH64 specification), exact, over raw memory. Plus a specialised
// form for the prefix chain's 72-byte input (64-byte block ‖ LE-u64 previous hash) that avoids
// copying the block next to the previous hash.

const P1: u64 = 0x9e3779b185ebca87;
const P2: u64 = 0xc2b2ae3d27d4eb4f;
const P3: u64 = 0x165667b19e3779f9;
const P4: u64 = 0x85ebca77c2b2ae63;
const P5: u64 = 0x27d4eb2f165667c5;

function round(acc: u64, lane: u64): u64 {
  acc += lane * P2;
  acc = rotl<u64>(acc, 31);
  return acc * P1;
}

function mergeRound(acc: u64, v: u64): u64 {
  acc ^= round(0, v);
  return acc * P1 + P4;
}

function avalanche(h: u64): u64 {
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

function converge(v1: u64, v2: u64, v3: u64, v4: u64): u64 {
  let h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
  h = mergeRound(h, v1);
  h = mergeRound(h, v2);
  h = mergeRound(h, v3);
  return mergeRound(h, v4);
}

function tail8(h: u64, lane: u64): u64 {
  h ^= round(0, lane);
  return rotl<u64>(h, 27) * P1 + P4;
}

/** XXH64 of `len` bytes at `ptr` with `seed`. */
export function xxh64(ptr: usize, len: i32, seed: u64): u64 {
  let p = ptr;
  const e = ptr + <usize>len;
  let h: u64;
  if (len >= 32) {
    let v1 = seed + P1 + P2;
    let v2 = seed + P2;
    let v3 = seed;
    let v4 = seed - P1;
    const limit = e - 32;
    while (p <= limit) {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      p += 32;
    }
    h = converge(v1, v2, v3, v4);
  } else {
    h = seed + P5;
  }
  h += <u64>len;
  while (p + 8 <= e) {
    h = tail8(h, load<u64>(p));
    p += 8;
  }
  if (p + 4 <= e) {
    h ^= <u64>load<u32>(p) * P1;
    h = rotl<u64>(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < e) {
    h ^= <u64>load<u8>(p) * P5;
    h = rotl<u64>(h, 11) * P1;
    p++;
  }
  return avalanche(h);
}

/** XXH64(seed 0) of the 72 bytes `block[0..64) ‖ LE-u64(prev)`, without building them. */
export function xxh64Chain(block: usize, prev: u64): u64 {
  let v1 = P1 + P2;
  let v2 = P2;
  let v3: u64 = 0;
  let v4: u64 = 0 - P1;
  for (let k: usize = 0; k < 64; k += 32) {
    v1 = round(v1, load<u64>(block + k));
    v2 = round(v2, load<u64>(block + k, 8));
    v3 = round(v3, load<u64>(block + k, 16));
    v4 = round(v4, load<u64>(block + k, 24));
  }
  let h = converge(v1, v2, v3, v4) + 72;
  h = tail8(h, prev);
  return avalanche(h);
}
