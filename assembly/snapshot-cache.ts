// A plugin's decoded copy of its pool's snapshot, refreshed from shared data only when the small
// version key changes (design: the big table is re-read and decoded only on a new version).
// Freshness is judged by this Envoy's clock: the version key carries when the control path stored the
// snapshot, and the sidecar's createdAt only counts within the allowed clock skew.

import { getSharedData, log, LogLevel } from "./abi/host.ts";
import { decodeSnapshotBuffer } from "./snapshot/decode.ts";
import { Snapshot } from "./snapshot/types.ts";

/** Version key: generation u64, crc32 u32, storedAtMs u64 (this Envoy's clock), little-endian. */
export const VERSION_KEY_BYTES: i32 = 20;

export class StoredVersion {
  constructor(
    public generation: u64,
    public crc: u32,
    public storedAtMs: u64,
  ) {}
}

export function readVersion(data: ArrayBuffer): StoredVersion | null {
  if (data.byteLength != VERSION_KEY_BYTES) return null;
  const base = changetype<usize>(data);
  return new StoredVersion(load<u64>(base), load<u32>(base + 8), load<u64>(base + 12));
}

export function encodeVersion(generation: u64, crc: u32, storedAtMs: u64): ArrayBuffer {
  const out = new ArrayBuffer(VERSION_KEY_BYTES);
  const base = changetype<usize>(out);
  store<u64>(base, generation);
  store<u32>(base + 8, crc);
  store<u64>(base + 12, storedAtMs);
  return out;
}

/**
 * When the snapshot's data was taken, on this Envoy's clock: its arrival, moved back by the time the
 * sidecar says it spent before sending it, but by at most `maxSkewMs` (a sidecar clock that runs behind
 * cannot make a new snapshot look old, one that runs ahead cannot make it look fresh for longer).
 */
export function referenceTimeMs(createdAtMs: u64, storedAtMs: u64, maxSkewMs: u64): u64 {
  if (createdAtMs >= storedAtMs) return storedAtMs;
  const before = storedAtMs - createdAtMs;
  return storedAtMs - (before < maxSkewMs ? before : maxSkewMs);
}

export class SnapshotCache {
  readonly tableKey: string;
  readonly versionKey: string;
  cached: Snapshot | null = null;
  /** referenceTimeMs of the cached snapshot. */
  takenAtMs: u64 = 0;
  private cachedStoredAtMs: u64 = 0;
  // The version key value this cache last acted on, to skip unchanged reads.
  private seenVersion: bool = false;
  private seenGeneration: u64 = 0;
  private seenCrc: u32 = 0;
  private seenStoredAt: u64 = 0;

  constructor(
    keyPrefix: string,
    private readonly maxSkewMs: u64,
  ) {
    this.tableKey = keyPrefix + "table";
    this.versionKey = keyPrefix + "version";
  }

  /**
   * Adopts a snapshot stored at `storedAtMs` if it is newer than the cached one, or if it was stored
   * later (the control path let a generation move back after the old one went unrefreshed).
   */
  adopt(s: Snapshot, storedAtMs: u64): bool {
    const c = this.cached;
    if (c != null && s.generation <= c.generation && storedAtMs <= this.cachedStoredAtMs) return false;
    this.cached = s;
    this.cachedStoredAtMs = storedAtMs;
    this.takenAtMs = referenceTimeMs(s.createdAtMs, storedAtMs, this.maxSkewMs);
    return true;
  }

  /** Age of the cached snapshot's data at `nowMs` (0 when in the future). */
  ageMs(nowMs: u64): u64 {
    return nowMs > this.takenAtMs ? nowMs - this.takenAtMs : 0;
  }

  /** Re-reads the table only when the version key changed; returns the usable snapshot or null. */
  refresh(): Snapshot | null {
    const raw = getSharedData(this.versionKey);
    if (raw == null) return this.cached;
    const v = readVersion(raw.data);
    if (v == null) return this.cached;
    if (
      this.seenVersion &&
      v.generation == this.seenGeneration &&
      v.crc == this.seenCrc &&
      v.storedAtMs == this.seenStoredAt
    )
      return this.cached;
    this.seenVersion = true;
    this.seenGeneration = v.generation;
    this.seenCrc = v.crc;
    this.seenStoredAt = v.storedAtMs;
    const c = this.cached;
    if (c != null && v.generation <= c.generation && v.storedAtMs <= this.cachedStoredAtMs) return c;
    const table = getSharedData(this.tableKey);
    if (table == null) return this.cached;
    const result = decodeSnapshotBuffer(table.data);
    const s = result.snapshot;
    if (s == null) {
      log(LogLevel.Error, "stored snapshot table does not decode: " + result.message);
      return this.cached;
    }
    // A table from another push than the version (a torn pair) only counts when it is newer.
    const matches = s.generation == v.generation && s.crc == v.crc;
    if (matches) this.adopt(s, v.storedAtMs);
    else if (c == null || s.generation > c.generation) this.adopt(s, v.storedAtMs);
    return this.cached;
  }
}
