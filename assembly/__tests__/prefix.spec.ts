// Unit tests of the pure prefix modules: xxHash64, chained block hashes, the prefix index.
import { xxh64, xxh64Chain } from "../prefix/xxhash64";
import { computeBlockHashes } from "../prefix/blocks";
import { PrefixIndex } from "../prefix/index";

function h(s: string, seed: u64 = 0): u64 {
  const b = String.UTF8.encode(s);
  return xxh64(changetype<usize>(b), b.byteLength, seed);
}

function hashesOf(prompt: string, model: string, out: StaticArray<u64>): i32 {
  const p = String.UTF8.encode(prompt);
  const m = String.UTF8.encode(model);
  return computeBlockHashes(changetype<usize>(p), p.byteLength, changetype<usize>(m), m.byteLength, out);
}

function list(xs: u64[]): StaticArray<u64> {
  const a = new StaticArray<u64>(xs.length);
  for (let i = 0; i < xs.length; i++) a[i] = xs[i];
  return a;
}

describe("xxh64", () => {
  it("matches published vectors", () => {
    expect<u64>(h("")).toBe(0xef46db3751d8e999);
    expect<u64>(h("a")).toBe(0xd24ec4f1a98c6e5b);
    expect<u64>(h("abc")).toBe(0x44bc2cf5ad770999);
  });
  it("the chain form equals xxh64 over block ‖ LE-u64(prev)", () => {
    const buf = new StaticArray<u8>(72);
    for (let i = 0; i < 64; i++) buf[i] = <u8>(i * 7 + 3);
    const prev: u64 = 0x0123456789abcdef;
    store<u64>(changetype<usize>(buf) + 64, prev);
    expect<u64>(xxh64Chain(changetype<usize>(buf), prev)).toBe(xxh64(changetype<usize>(buf), 72, 0));
  });
});

describe("block hashes", () => {
  it("ignores the trailing partial block and caps at the output size", () => {
    const out = new StaticArray<u64>(256);
    expect(hashesOf("x".repeat(63), "m", out)).toBe(0);
    expect(hashesOf("x".repeat(129), "m", out)).toBe(2);
    const small = new StaticArray<u64>(3);
    expect(hashesOf("x".repeat(640), "m", small)).toBe(3);
  });
  it("same prefix gives the same leading hashes; a different model changes all", () => {
    const a = new StaticArray<u64>(256);
    const b = new StaticArray<u64>(256);
    const c = new StaticArray<u64>(256);
    const base = "y".repeat(128);
    hashesOf(base + "A".repeat(64), "m", a);
    hashesOf(base + "B".repeat(64), "m", b);
    hashesOf(base + "A".repeat(64), "other", c);
    expect<u64>(a[0]).toBe(b[0]);
    expect<u64>(a[1]).toBe(b[1]);
    expect<u64>(a[2]).not.toBe(b[2]);
    for (let i = 0; i < 3; i++) expect<u64>(a[i]).not.toBe(c[i]);
    // Identical blocks at different positions hash differently (chained).
    expect<u64>(a[0]).not.toBe(a[1]);
  });
});

describe("prefix index", () => {
  it("matches contiguous leading blocks per endpoint", () => {
    const idx = new PrefixIndex(4);
    const out = new StaticArray<i32>(4);
    idx.add(list([1, 2, 3]), 3, 0);
    idx.add(list([1, 2]), 2, 1);
    idx.add(list([2, 3, 4]), 3, 2);
    expect(idx.match(list([1, 2, 3, 4]), 4, out)).toBe(3);
    expect(out[0]).toBe(3);
    expect(out[1]).toBe(2);
    expect(out[2]).toBe(0);
    expect(idx.match(list([9, 1]), 2, out)).toBe(0);
    expect(idx.holderCount(2)).toBe(3);
  });
  it("evicts least recently used blocks, deepest first", () => {
    const idx = new PrefixIndex(2);
    const out = new StaticArray<i32>(2);
    idx.setCapacity(0, 3);
    idx.add(list([1, 2, 3, 4, 5]), 5, 0);
    expect(idx.sizeOf(0)).toBe(3);
    expect(idx.holds(1, 0)).toBe(true);
    expect(idx.holds(4, 0)).toBe(false);
    idx.add(list([1]), 1, 0); // refresh 1
    idx.add(list([8, 9]), 2, 0); // evicts 3 then 2
    expect(idx.holds(1, 0)).toBe(true);
    expect(idx.holds(2, 0)).toBe(false);
    expect(idx.match(list([1, 2]), 2, out)).toBe(1);
  });
  it("forgets a removed endpoint", () => {
    const idx = new PrefixIndex(3);
    idx.add(list([1, 2]), 2, 1);
    idx.add(list([1, 2]), 2, 2);
    idx.removeEndpoint(1);
    expect(idx.holds(1, 1)).toBe(false);
    expect(idx.holderCount(1)).toBe(1);
    expect(idx.size).toBe(2);
    expect(idx.distinctHashes).toBe(2);
  });
  it("grows its endpoint slots on demand", () => {
    const idx = new PrefixIndex(2);
    idx.add(list([1, 2]), 2, 1);
    idx.add(list([1, 2]), 2, 5); // out of range: ignored
    expect(idx.size).toBe(2);
    idx.ensureEndpoints(8);
    idx.add(list([1, 2]), 2, 5);
    const out = new StaticArray<i32>(8);
    expect(idx.match(list([1, 2]), 2, out)).toBe(2);
    expect(out[1]).toBe(2);
    expect(out[5]).toBe(2);
    expect(idx.capacityOf(7)).toBe(31250);
  });
  it("grows past its initial size and stays consistent", () => {
    const idx = new PrefixIndex(8, 1 << 20, 16);
    const hs = new StaticArray<u64>(100);
    for (let e = 0; e < 8; e++) {
      for (let i = 0; i < 100; i++) hs[i] = <u64>(e % 2) * 1000 + <u64>i + 1;
      idx.add(hs, 100, e);
    }
    expect(idx.size).toBe(800);
    expect(idx.distinctHashes).toBe(200);
    const out = new StaticArray<i32>(8);
    expect(idx.match(hs, 100, out)).toBe(100);
    expect(out[1]).toBe(100);
    expect(out[0]).toBe(0);
  });
});
