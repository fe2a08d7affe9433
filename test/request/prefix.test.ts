// xxHash64, chained block hashes and the prefix index, through the compiled request probe,
// checked against the BigInt/Map references in reference.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRequestProbe, KIND } from "./request-probe.ts";
import { mulberry32 } from "../../sim/rng.ts";
import { blockHashesReference, xxh64Reference } from "./reference.ts";

const probe = loadRequestProbe();
const enc = new TextEncoder();

test("xxh64 matches published vectors", () => {
  assert.equal(probe.hash64(new Uint8Array(0), 0n), 0xef46db3751d8e999n);
  assert.equal(xxh64Reference(new Uint8Array(0)), 0xef46db3751d8e999n);
  assert.equal(probe.hash64(enc.encode("a"), 0n), 0xd24ec4f1a98c6e5bn);
  assert.equal(probe.hash64(enc.encode("abc"), 0n), 0x44bc2cf5ad770999n);
});

test("xxh64 matches the BigInt reference for every length 0..300 and several seeds", () => {
  const r = mulberry32(7);
  const data = Uint8Array.from({ length: 300 }, () => Math.floor(r() * 256));
  for (const seed of [0n, 1n, 0x9e3779b97f4a7c15n, (1n << 64n) - 1n]) {
    for (let len = 0; len <= 300; len++) {
      const d = data.subarray(0, len);
      assert.equal(probe.hash64(d, seed), xxh64Reference(d, seed), `len ${len} seed ${seed}`);
    }
  }
});

function chat(model: string, system: string, user: string): string {
  return JSON.stringify({
    model,
    messages: [
      { role: "system", content: system },
      { role: "user", content: user },
    ],
  });
}

function hashesOf(body: string, kind: number): { prompt: Uint8Array; hashes: bigint[] } {
  assert.equal(probe.scan(body).error, 0);
  const prompt = probe.prompt(kind);
  return { prompt, hashes: probe.hashes() };
}

test("block hashes: chained, 64-byte blocks, partial block ignored, equal to the reference", () => {
  const sys = "You are a helpful assistant. ".repeat(20);
  const a = hashesOf(chat("llama", sys, "What is the capital of France?"), KIND.chat);
  assert.equal(a.hashes.length, Math.floor(a.prompt.length / 64));
  assert.deepEqual(a.hashes, blockHashesReference(a.prompt, "llama"));
  // Same leading text ⇒ same leading hashes; the differing tail changes only later blocks.
  const b = hashesOf(chat("llama", sys, "Tell me a long story about dragons please."), KIND.chat);
  const shared = Math.floor((a.prompt.findIndex((x, i) => x !== b.prompt[i]) as number) / 64);
  assert.ok(shared >= 9);
  assert.deepEqual(b.hashes.slice(0, shared), a.hashes.slice(0, shared));
  assert.notEqual(b.hashes[shared], a.hashes[shared]);
  // Different model ⇒ every hash differs.
  const c = hashesOf(chat("mistral", sys, "What is the capital of France?"), KIND.chat);
  assert.equal(c.hashes.length, a.hashes.length);
  for (let i = 0; i < c.hashes.length; i++) assert.notEqual(c.hashes[i], a.hashes[i]);
  // Under one block ⇒ no hashes.
  assert.deepEqual(hashesOf(JSON.stringify({ model: "m", prompt: "short" }), KIND.completions).hashes, []);
});

test("block hashes: at most 256 blocks from a prompt capped at 16 KiB", () => {
  const body = JSON.stringify({ model: "m", prompt: "x".repeat(40_000) });
  const { prompt, hashes } = hashesOf(body, KIND.completions);
  assert.equal(prompt.length, 16384);
  assert.equal(probe.x.promptTruncated(), 1);
  assert.equal(hashes.length, 256);
  assert.deepEqual(hashes, blockHashesReference(prompt, "m"));
});

/** Straightforward reference: per-endpoint insertion-ordered Map as LRU. */
class ReferenceIndex {
  lru: Map<bigint, true>[];
  cap: number[];
  constructor(n: number) {
    this.lru = Array.from({ length: n }, () => new Map());
    this.cap = Array.from({ length: n }, () => 31250);
  }
  add(hashes: bigint[], e: number): void {
    const m = this.lru[e];
    for (let i = hashes.length - 1; i >= 0; i--) {
      m.delete(hashes[i]);
      if (this.cap[e] === 0) continue;
      if (m.size >= this.cap[e]) m.delete(m.keys().next().value as bigint);
      m.set(hashes[i], true);
    }
  }
  setCapacity(e: number, cap: number): void {
    this.cap[e] = cap;
    const m = this.lru[e];
    while (m.size > cap) m.delete(m.keys().next().value as bigint);
  }
  remove(e: number): void {
    this.lru[e].clear();
    this.cap[e] = 31250;
  }
  match(hashes: bigint[]): number[] {
    return this.lru.map((m) => {
      let k = 0;
      while (k < hashes.length && m.has(hashes[k])) k++;
      return k;
    });
  }
}

test("index: match counts contiguous leading blocks per endpoint", () => {
  probe.x.indexReset(4, 0);
  const h = [11n, 22n, 33n, 44n];
  probe.loadHashes(h.slice(0, 3));
  probe.x.indexAdd(0);
  probe.loadHashes([11n, 22n]);
  probe.x.indexAdd(1);
  probe.loadHashes([22n, 33n, 44n]); // holds later blocks but not the first
  probe.x.indexAdd(2);
  probe.loadHashes(h);
  assert.deepEqual(probe.match(4), { best: 3, perEndpoint: [3, 2, 0, 0] });
  probe.loadHashes([99n, ...h]);
  assert.deepEqual(probe.match(4), { best: 0, perEndpoint: [0, 0, 0, 0] });
  probe.x.indexRemove(0);
  probe.loadHashes(h);
  assert.deepEqual(probe.match(4), { best: 2, perEndpoint: [0, 2, 0, 0] });
  assert.equal(probe.x.indexSize(), 5);
});

test("index: LRU evicts deepest blocks first and respects per-endpoint capacity", () => {
  probe.x.indexReset(2, 0);
  probe.x.indexSetCapacity(0, 3);
  probe.loadHashes([1n, 2n, 3n, 4n, 5n]);
  probe.x.indexAdd(0);
  assert.equal(probe.x.indexSizeOf(0), 3);
  assert.deepEqual(probe.match(2).perEndpoint, [3, 0]);
  probe.loadHashes([7n, 8n]);
  probe.x.indexAdd(0); // evicts the least recently used: 3 then 2
  probe.loadHashes([1n, 2n, 3n]);
  assert.deepEqual(probe.match(2).perEndpoint, [1, 0]);
  probe.x.indexSetCapacity(0, 1);
  probe.loadHashes([7n]);
  assert.deepEqual(probe.match(2).perEndpoint, [1, 0]);
  assert.equal(probe.x.indexSize(), 1);
});

test("index: 20k random operations agree with the reference index", () => {
  const endpoints = 24;
  probe.x.indexReset(endpoints, 0);
  const ref = new ReferenceIndex(endpoints);
  const r = mulberry32(99);
  // A small tree of prefixes so that requests share leading blocks.
  const roots = Array.from({ length: 6 }, (_, i) => BigInt(i + 1) << 40n);
  const request = (): bigint[] => {
    const root = roots[Math.floor(r() * roots.length)];
    const len = 1 + Math.floor(r() * 30);
    const branch = Math.floor(r() * 4);
    const hs = Array.from({ length: len }, (_, i) =>
      i < 8 ? root + BigInt(i) : root + BigInt(branch * 1000 + i),
    );
    // Sometimes splice in another root's block, which other endpoints hold: runs must break there.
    if (r() < 0.3) {
      const k = Math.floor(r() * Math.min(len, 8));
      hs[k] = roots[Math.floor(r() * roots.length)] + BigInt(k);
    }
    return hs;
  };
  for (let op = 0; op < 20_000; op++) {
    const x = r();
    const e = Math.floor(r() * endpoints);
    const hs = request();
    if (x < 0.55) {
      probe.loadHashes(hs);
      probe.x.indexAdd(e);
      ref.add(hs, e);
    } else if (x < 0.57) {
      const cap = Math.floor(r() * 80);
      probe.x.indexSetCapacity(e, cap);
      ref.setCapacity(e, cap);
    } else if (x < 0.58) {
      probe.x.indexRemove(e);
      ref.remove(e);
    } else {
      probe.loadHashes(hs);
      const got = probe.match(endpoints);
      const want = ref.match(hs);
      assert.deepEqual(got.perEndpoint, want, `op ${op}`);
      assert.equal(got.best, Math.max(0, ...want), `op ${op}`);
    }
  }
  assert.equal(
    probe.x.indexSize(),
    ref.lru.reduce((s, m) => s + m.size, 0),
  );
});

test("index: the global entry limit recycles old entries instead of growing", () => {
  probe.x.indexReset(8, 100);
  for (let e = 0; e < 8; e++) {
    probe.loadHashes(Array.from({ length: 40 }, (_, i) => BigInt(e * 1000 + i + 1)));
    probe.x.indexAdd(e);
  }
  assert.equal(probe.x.indexSize(), 100);
  // The latest endpoint keeps its leading blocks.
  probe.loadHashes(Array.from({ length: 40 }, (_, i) => BigInt(7000 + i + 1)));
  assert.ok(probe.match(8).perEndpoint[7] > 0);
});
