// Unit tests of the pure snapshot decoder on hand-built byte arrays: one valid snapshot and each
// corruption class, plus CRC-32 known vectors, UTF-8 validation and IP literals.
import { crc32 } from "../snapshot/crc32";
import { isValidUtf8 } from "../snapshot/utf8";
import { isIPv4, isIPv6, hostPort } from "../snapshot/ip";
import { decodeSnapshot, DecodeError, DecodeResult } from "../snapshot/decode";

/** Little-endian byte builder for test snapshots. */
class Bytes {
  b: u8[] = [];
  u8(v: u32): Bytes {
    this.b.push(<u8>v);
    return this;
  }
  u16(v: u32): Bytes {
    return this.u8(v & 0xff).u8(v >> 8);
  }
  u32(v: u32): Bytes {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  u64(v: u64): Bytes {
    return this.u32(<u32>v).u32(<u32>(v >> 32));
  }
  raw(s: string): Bytes {
    const a = Uint8Array.wrap(String.UTF8.encode(s));
    for (let i = 0; i < a.length; i++) this.u8(a[i]);
    return this;
  }
  section(tag: u32, payload: Bytes): Bytes {
    this.u16(tag).u16(0).u32(payload.b.length);
    for (let i = 0; i < payload.b.length; i++) this.b.push(payload.b[i]);
    return this;
  }
}

function strings(list: string[]): Bytes {
  const p = new Bytes().u32(list.length);
  for (let i = 0; i < list.length; i++) {
    p.u16(String.UTF8.byteLength(list[i])).raw(list[i]);
  }
  return p;
}

// String table used by the builders below.
const STRS = ["ns", "pool", "pod-0", "10.0.0.1", "pod-1", "fd00::1", "lora-a"];

function pool(): Bytes {
  return new Bytes().u32(0).u32(1).u8(1).u8(1).u8(1).u16(8000);
}

function endpoint(p: Bytes, pod: u32, addr: u32, port: u32, waiting: u32): Bytes {
  p.u32(pod)
    .u32(addr)
    .u16(port)
    .u8(0b101)
    .u8(0)
    .u32(12)
    .u32(waiting)
    .u32(1)
    .u16(2500)
    .u16(4)
    .u16(16)
    .u32(1000);
  return p.u8(1).u8(0).u32(6);
}

function endpoints(): Bytes {
  const p = new Bytes().u32(2);
  endpoint(p, 2, 3, 8000, 3);
  return endpoint(p, 4, 5, 9000, 0);
}

/** Header + sections, with totalLength and CRC filled in. */
function finish(body: Bytes, generation: u64 = 7): Uint8Array {
  const h = new Bytes().raw("EPPS").u16(1).u16(32).u32(0).u32(0).u64(generation).u64(1700000000000);
  for (let i = 0; i < body.b.length; i++) h.b.push(body.b[i]);
  const out = new Uint8Array(h.b.length);
  for (let i = 0; i < h.b.length; i++) out[i] = h.b[i];
  store<u32>(out.dataStart + 8, out.length);
  store<u32>(out.dataStart + 12, crc32(out.dataStart + 16, out.length - 16));
  return out;
}

function valid(): Uint8Array {
  return finish(new Bytes().section(1, strings(STRS)).section(2, pool()).section(3, endpoints()));
}

function decode(a: Uint8Array): DecodeResult {
  return decodeSnapshot(a.dataStart, a.length);
}

function bytesOf(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

describe("crc32", () => {
  it("matches the IEEE check value and zlib", () => {
    const a = bytesOf("123456789");
    expect<u32>(crc32(a.dataStart, a.length)).toBe(0xcbf43926);
    expect<u32>(crc32(0, 0)).toBe(0);
    const b = bytesOf("The quick brown fox jumps over the lazy dog");
    expect<u32>(crc32(b.dataStart, b.length)).toBe(0x414fa339);
  });
});

describe("utf8", () => {
  it("accepts well-formed text and rejects overlongs, surrogates and truncations", () => {
    const ok = bytesOf("héllo ✓ 😀");
    expect<bool>(isValidUtf8(ok.dataStart, ok.length)).toBe(true);
    const bad: u8[][] = [
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xe2, 0x82],
      [0xf4, 0x90, 0x80, 0x80],
      [0x80],
      [0xff],
    ];
    for (let i = 0; i < bad.length; i++) {
      const a = new Uint8Array(bad[i].length);
      for (let k = 0; k < bad[i].length; k++) a[k] = bad[i][k];
      expect<bool>(isValidUtf8(a.dataStart, a.length)).toBe(false);
    }
  });
});

describe("ip", () => {
  it("recognises IPv4 and IPv6 literals", () => {
    expect<bool>(isIPv4("10.0.0.1")).toBe(true);
    expect<bool>(isIPv4("255.255.255.255")).toBe(true);
    expect<bool>(isIPv4("256.0.0.1")).toBe(false);
    expect<bool>(isIPv4("01.0.0.1")).toBe(false);
    expect<bool>(isIPv4("1.2.3")).toBe(false);
    expect<bool>(isIPv4("1.2.3.4.")).toBe(false);
    expect<bool>(isIPv6("::1")).toBe(true);
    expect<bool>(isIPv6("::")).toBe(true);
    expect<bool>(isIPv6("fd00::7")).toBe(true);
    expect<bool>(isIPv6("2001:db8:0:0:0:0:0:1")).toBe(true);
    expect<bool>(isIPv6("::ffff:10.0.0.1")).toBe(true);
    expect<bool>(isIPv6("1::2::3")).toBe(false);
    expect<bool>(isIPv6("12345::")).toBe(false);
    expect<bool>(isIPv6("pod.local")).toBe(false);
  });
  it("brackets IPv6 in ip:port", () => {
    expect<string>(hostPort("10.0.0.1", 8000)).toBe("10.0.0.1:8000");
    expect<string>(hostPort("fd00::1", 9000)).toBe("[fd00::1]:9000");
  });
});

describe("decodeSnapshot", () => {
  it("decodes a valid snapshot", () => {
    const r = decode(valid());
    expect<DecodeError>(r.error).toBe(DecodeError.None);
    const s = r.snapshot!;
    expect<u64>(s.generation).toBe(7);
    expect<u64>(s.createdAtMs).toBe(1700000000000);
    expect<string>(s.pool.namespace).toBe("ns");
    expect<bool>(s.pool.failOpen).toBe(true);
    expect<bool>(s.pool.strictModels).toBe(true);
    expect<i32>(s.endpoints.length).toBe(2);
    expect<string>(s.endpoints[1].hostPort).toBe("[fd00::1]:9000");
    expect<bool>(s.endpoints[0].ready).toBe(true);
    expect<bool>(s.endpoints[0].stale).toBe(false);
    expect<bool>(s.endpoints[0].hasMetrics).toBe(true);
    expect<u32>(s.endpoints[0].waiting).toBe(3);
    expect<u16>(s.endpoints[0].kvUsage).toBe(2500);
    expect<string>(s.endpoints[0].runningAdapters[0]).toBe("lora-a");
    expect<string>(s.scheduler.profile).toBe("default");
    expect<u32>(s.scheduler.queueThreshold).toBe(5);
  });

  it("skips unknown sections", () => {
    const r = decode(
      finish(
        new Bytes()
          .section(1, strings(STRS))
          .section(99, new Bytes().u32(1))
          .section(2, pool())
          .section(3, endpoints()),
      ),
    );
    expect<DecodeError>(r.error).toBe(DecodeError.None);
  });

  it("rejects every truncation", () => {
    const a = valid();
    for (let n = 0; n < a.length; n++) {
      expect<bool>(decode(a.subarray(0, n)).error != DecodeError.None).toBe(true);
    }
  });

  it("rejects a bad magic, version, length and checksum", () => {
    let a = valid();
    a[0] = 0x46;
    expect<DecodeError>(decode(a).error).toBe(DecodeError.BadMagic);
    a = valid();
    a[4] = 3; // versions 1 and 2 are read
    expect<DecodeError>(decode(a).error).toBe(DecodeError.BadVersion);
    a = valid();
    a[8] ^= 1;
    expect<DecodeError>(decode(a).error).toBe(DecodeError.BadLength);
    a = valid();
    a[a.length - 1] ^= 0x10;
    expect<DecodeError>(decode(a).error).toBe(DecodeError.BadChecksum);
  });

  it("rejects missing, repeated and misordered sections", () => {
    expect<DecodeError>(decode(finish(new Bytes().section(1, strings(STRS)).section(2, pool()))).error).toBe(
      DecodeError.MissingSection,
    );
    expect<DecodeError>(
      decode(
        finish(
          new Bytes().section(1, strings(STRS)).section(2, pool()).section(2, pool()).section(3, endpoints()),
        ),
      ).error,
    ).toBe(DecodeError.BadSection);
    expect<DecodeError>(
      decode(finish(new Bytes().section(2, pool()).section(1, strings(STRS)).section(3, endpoints()))).error,
    ).toBe(DecodeError.BadSection);
  });

  it("rejects a section whose payload is not consumed exactly", () => {
    const r = decode(
      finish(new Bytes().section(1, strings(STRS)).section(2, pool().u8(0)).section(3, endpoints())),
    );
    expect<DecodeError>(r.error).toBe(DecodeError.BadSection);
  });

  it("rejects bad strings: invalid UTF-8, out-of-range references", () => {
    const bad = new Bytes().u32(1).u16(2).u8(0xc0).u8(0xaf);
    expect<DecodeError>(
      decode(finish(new Bytes().section(1, bad).section(2, pool()).section(3, endpoints()))).error,
    ).toBe(DecodeError.BadString);
    const badRef = new Bytes().u32(0).u32(99).u8(0).u8(0).u8(1).u16(8000);
    expect<DecodeError>(
      decode(finish(new Bytes().section(1, strings(STRS)).section(2, badRef).section(3, endpoints()))).error,
    ).toBe(DecodeError.BadStringRef);
  });

  it("checks counts against the remaining bytes before allocating", () => {
    const huge = new Bytes().u32(0xffffffff);
    expect<DecodeError>(
      decode(finish(new Bytes().section(1, strings(STRS)).section(2, pool()).section(3, huge))).error,
    ).toBe(DecodeError.BadEndpoint);
    expect<DecodeError>(
      decode(finish(new Bytes().section(1, huge).section(2, pool()).section(3, endpoints()))).error,
    ).toBe(DecodeError.BadString);
  });

  it("rejects duplicate endpoints, port 0 and non-IP addresses", () => {
    const dup = new Bytes().u32(2);
    endpoint(dup, 2, 3, 8000, 0);
    endpoint(dup, 4, 3, 8000, 0);
    expect<DecodeError>(
      decode(finish(new Bytes().section(1, strings(STRS)).section(2, pool()).section(3, dup))).error,
    ).toBe(DecodeError.DuplicateEndpoint);
    const port0 = endpoint(new Bytes().u32(1), 2, 3, 0, 0);
    expect<DecodeError>(
      decode(finish(new Bytes().section(1, strings(STRS)).section(2, pool()).section(3, port0))).error,
    ).toBe(DecodeError.BadEndpoint);
    const host = endpoint(new Bytes().u32(1), 2, 2, 8000, 0);
    expect<DecodeError>(
      decode(finish(new Bytes().section(1, strings(STRS)).section(2, pool()).section(3, host))).error,
    ).toBe(DecodeError.BadEndpoint);
  });

  it("rejects a pool with no target ports and a non-finite scheduler parameter", () => {
    const noPorts = new Bytes().u32(0).u32(1).u8(0).u8(0).u8(0);
    expect<DecodeError>(
      decode(finish(new Bytes().section(1, strings(STRS)).section(2, noPorts).section(3, endpoints()))).error,
    ).toBe(DecodeError.BadPool);
    const sch = new Bytes().u32(0).u32(5).u16(8000).u32(200).u16(1).u32(1).u64(0x7ff0000000000000);
    expect<DecodeError>(
      decode(
        finish(
          new Bytes().section(1, strings(STRS)).section(2, pool()).section(3, endpoints()).section(7, sch),
        ),
      ).error,
    ).toBe(DecodeError.BadScheduler);
  });
});
