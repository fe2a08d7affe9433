// One snapshot, pushed (control.ts) or pulled (pull.ts), is checked and stored the same way here, so
// neither transport can put into shared data what the other would refuse.

import { getSharedData, log, LogLevel, setSharedData } from "./abi/host.ts";
import { encodeVersion, readVersion, StoredVersion } from "./snapshot-cache.ts";
import { decodeSnapshotBuffer } from "./snapshot/decode.ts";
import { validateSpec } from "./scheduling/build.ts";
import { config, plugin } from "./plugins.ts";
import { countSnapshot } from "./metrics.ts";

/**
 * A stored snapshot that nobody refreshed for this long no longer blocks an older generation: no pushed
 * generation (2^64−1 included) can keep the real sidecar from taking routing back within a second.
 */
export const GENERATION_HOLD_MS: u64 = 500;

export const INGEST_STORED: i32 = 0;
export const INGEST_UNCHANGED: i32 = 1;
/** Refused: 400 on the control path (invalid, wrong pool, dated in the future). */
export const INGEST_INVALID: i32 = 2;
/** Refused: 409 on the control path (the generation is not newer than the stored one). */
export const INGEST_NOT_NEWER: i32 = 3;

export class Ingest {
  constructor(
    public outcome: i32,
    /** Stored/unchanged: the snapshot's generation; not newer: the stored generation. */
    public generation: u64,
    /** Machine-readable reason (the error code of the control path's reply). */
    public code: string,
    public message: string,
  ) {}
}

function refused(outcome: i32, code: string, message: string, generation: u64 = 0): Ingest {
  return new Ingest(outcome, generation, code, message);
}

/**
 * One snapshot, pushed or pulled, checked and stored the same way: decode, pool, not dated in the
 * future, generation rule (with the hold), table then version key, adopt. The active plugin's pool.
 */
export function ingestSnapshot(body: ArrayBuffer, nowMs: u64): Ingest {
  const r = checkAndStore(body, nowMs);
  const o = r.outcome;
  countSnapshot(o == INGEST_STORED ? "accepted" : o == INGEST_UNCHANGED ? "unchanged" : "rejected", r.code);
  return r;
}

function checkAndStore(body: ArrayBuffer, nowMs: u64): Ingest {
  const result = decodeSnapshotBuffer(body);
  const s = result.snapshot;
  if (s == null) {
    log(LogLevel.Warn, "rejected snapshot: " + result.message);
    return refused(INGEST_INVALID, "invalid_snapshot", "invalid snapshot: " + result.message);
  }
  if (s.pool.namespace != config.poolNamespace || s.pool.name != config.poolName) {
    const got = s.pool.namespace + "/" + s.pool.name;
    const want = config.poolNamespace + "/" + config.poolName;
    return refused(
      INGEST_INVALID,
      "wrong_pool",
      "snapshot is for pool " + got + ", this filter serves " + want,
    );
  }
  const spec = s.scheduling;
  if (spec != null) {
    // A config this filter cannot build (a newer sidecar's plugin type, say) is refused whole, so the
    // previous one keeps routing; the message names the plugin and what is wrong with it.
    const why = validateSpec(spec);
    if (why.length > 0) {
      log(LogLevel.Warn, "rejected snapshot: scheduling config: " + why);
      return refused(INGEST_INVALID, "unsupported_scheduling_config", "scheduling config refused: " + why);
    }
  }
  if (s.createdAtMs > nowMs + config.maxClockSkewMs) {
    return refused(
      INGEST_INVALID,
      "future_snapshot",
      "snapshot createdAtMs is " +
        (s.createdAtMs - nowMs).toString() +
        " ms ahead of this Envoy's clock (maxClockSkewMs " +
        config.maxClockSkewMs.toString() +
        "); check the sidecar's clock",
    );
  }
  const cache = plugin.snapshots;
  const storedValue = getSharedData(cache.versionKey);
  let stored: StoredVersion | null = null;
  if (storedValue != null) stored = readVersion(storedValue.data);
  if (stored != null) {
    const storedGeneration = stored.generation;
    const storedCrc = stored.crc;
    const heldMs = nowMs > stored.storedAtMs ? nowMs - stored.storedAtMs : 0;
    if (s.generation == storedGeneration && s.crc == storedCrc) {
      return new Ingest(INGEST_UNCHANGED, storedGeneration, "unchanged", "");
    }
    if (s.generation < storedGeneration && heldMs >= GENERATION_HOLD_MS) {
      log(
        LogLevel.Warn,
        "generation moves back from " +
          storedGeneration.toString() +
          " to " +
          s.generation.toString() +
          ": the stored snapshot was not refreshed for " +
          heldMs.toString() +
          " ms",
      );
    } else if (s.generation <= storedGeneration) {
      return refused(
        INGEST_NOT_NEWER,
        "stale_generation",
        "generation " +
          s.generation.toString() +
          " is not newer than the stored " +
          storedGeneration.toString(),
        storedGeneration,
      );
    }
  }
  // Table first, then the version: a reader that sees the new version finds a table at least as new.
  setSharedData(cache.tableKey, body);
  setSharedData(cache.versionKey, encodeVersion(s.generation, s.crc, nowMs));
  cache.adopt(s, nowMs);
  // Debug, not info: snapshots arrive every ~50-100 ms.
  log(
    LogLevel.Debug,
    "stored snapshot generation " +
      s.generation.toString() +
      " with " +
      s.endpoints.length.toString() +
      " endpoints",
  );
  return new Ingest(INGEST_STORED, s.generation, "stored", "");
}
