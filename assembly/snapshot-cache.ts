// A plugin's decoded copy of its pool's snapshot, refreshed from shared data only when the small
// version key changes (design: the big table is re-read and decoded only on a new version).

import { getSharedData, log, LogLevel } from "./abi/host.ts";
import { decodeSnapshotBuffer } from "./snapshot/decode.ts";
import { Snapshot } from "./snapshot/types.ts";

export class SnapshotCache {
  readonly tableKey: string;
  readonly versionKey: string;
  cached: Snapshot | null = null;
  // The version key value this cache last acted on (generation u64 + crc32 u32), to skip unchanged reads.
  private seenVersion: bool = false;
  private seenGeneration: u64 = 0;
  private seenCrc: u32 = 0;

  constructor(keyPrefix: string) {
    this.tableKey = keyPrefix + "table";
    this.versionKey = keyPrefix + "version";
  }

  /** Adopts a snapshot if it is newer than the cached one (generations never move backwards). */
  adopt(s: Snapshot): bool {
    const c = this.cached;
    if (c != null && s.generation <= c.generation) return false;
    this.cached = s;
    return true;
  }

  /** Re-reads the table only when the version key changed; returns the usable snapshot or null. */
  refresh(): Snapshot | null {
    const v = getSharedData(this.versionKey);
    if (v == null || v.data.byteLength != 12) return this.cached;
    const base = changetype<usize>(v.data);
    const generation = load<u64>(base);
    const crc = load<u32>(base + 8);
    if (this.seenVersion && generation == this.seenGeneration && crc == this.seenCrc) return this.cached;
    this.seenVersion = true;
    this.seenGeneration = generation;
    this.seenCrc = crc;
    const c = this.cached;
    if (c != null && generation <= c.generation) return c;
    const table = getSharedData(this.tableKey);
    if (table == null) return this.cached;
    const result = decodeSnapshotBuffer(table.data);
    const s = result.snapshot;
    if (s == null) {
      log(LogLevel.Error, "stored snapshot table does not decode: " + result.message);
      return this.cached;
    }
    this.adopt(s);
    return this.cached;
  }
}
