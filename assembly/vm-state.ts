// Per-VM state (module globals exist once per Envoy worker VM): the configuration and this VM's
// decoded copy of the pool's snapshot, refreshed from shared data only when the version key changes.

import { PluginConfig } from "./config.ts";
import { getSharedData, log, LogLevel } from "./abi/host.ts";
import { decodeSnapshotBuffer } from "./snapshot/decode.ts";
import { Snapshot } from "./snapshot/types.ts";

export let config: PluginConfig = new PluginConfig();
export let tableKey: string = "";
export let versionKey: string = "";

export function setConfig(c: PluginConfig): void {
  config = c;
  tableKey = c.keyPrefix() + "table";
  versionKey = c.keyPrefix() + "version";
}

export let cached: Snapshot | null = null;
// The version key value this VM last acted on (generation u64 + crc32 u32), to skip unchanged reads.
let seenVersion: bool = false;
let seenGeneration: u64 = 0;
let seenCrc: u32 = 0;

/** Adopts a snapshot if it is newer than the cached one (generations never move backwards). */
export function adopt(s: Snapshot): bool {
  const c = cached;
  if (c != null && s.generation <= c.generation) return false;
  cached = s;
  return true;
}

/** Re-reads the table only when the small version key changed; returns the usable snapshot or null. */
export function refreshSnapshot(): Snapshot | null {
  const v = getSharedData(versionKey);
  if (v == null || v.data.byteLength != 12) return cached;
  const base = changetype<usize>(v.data);
  const generation = load<u64>(base);
  const crc = load<u32>(base + 8);
  if (seenVersion && generation == seenGeneration && crc == seenCrc) return cached;
  seenVersion = true;
  seenGeneration = generation;
  seenCrc = crc;
  const c = cached;
  if (c != null && generation <= c.generation) return c;
  const table = getSharedData(tableKey);
  if (table == null) return cached;
  const result = decodeSnapshotBuffer(table.data);
  const s = result.snapshot;
  if (s == null) {
    log(LogLevel.Error, "stored snapshot table does not decode: " + result.message);
    return cached;
  }
  adopt(s);
  return cached;
}
