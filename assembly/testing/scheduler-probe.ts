// Test/bench entry exposing the pure scheduler to Node (build:scheduler-probe): builds a synthetic pool
// and times whole decisions — block hashing of the prompt, admission, filters, scorers, picker and the
// post-pick bookkeeping — exactly as the filter will run them. Plain asc output (only env.abort).

import { Endpoint, RequestInfo, SchedulerConfig } from "../scheduling/types.ts";
import { Scheduler } from "../scheduling/scheduler.ts";
import { builtinSpec } from "../scheduling/builtin.ts";
import { describeSpec } from "../scheduling/describe.ts";
import { registry } from "../scheduling/registry.ts";
import { computeBlockHashes, DEFAULT_MAX_BLOCKS } from "../prefix/blocks.ts";

const PROFILES: string[] = ["default", "gie-default", "legacy"];
/** Requests per synthetic snapshot: in-flight counts reset as when a new snapshot (~50 ms) arrives.
 *  0 = only when beginSnapshot() is called (simulations that feed real metrics). */
let requestsPerSnapshot: i32 = 64;

let input = new StaticArray<u8>(1 << 16);
let output = new ArrayBuffer(0);
let endpoints: Endpoint[] = [];
let scheduler = new Scheduler(1);
const req = new RequestInfo();
const hashes = new StaticArray<u64>(DEFAULT_MAX_BLOCKS);
const modelBytes = String.UTF8.encode("meta-llama/Llama-3.1-8B-Instruct");
let sinceSnapshot: i32 = 0;

export function inputBuffer(len: i32): usize {
  if (input.length < len) input = new StaticArray<u8>(len);
  return changetype<usize>(input);
}

/**
 * A pool of n endpoints with deterministic, varied load, and a scheduler for profile
 * 0 default / 1 gie-default / 2 legacy. Returns n.
 */
export function setup(n: i32, profile: i32, seed: u64): i32 {
  const cfg = new SchedulerConfig();
  cfg.profile = PROFILES[profile < 0 || profile >= PROFILES.length ? 0 : profile];
  endpoints = new Array<Endpoint>();
  for (let i = 0; i < n; i++) {
    const e = new Endpoint();
    e.slot = i;
    e.hostPort =
      "10." +
      ((i >> 16) & 255).toString() +
      "." +
      ((i >> 8) & 255).toString() +
      "." +
      (i & 255).toString() +
      ":8000";
    e.waiting = (i * 7) % 6;
    e.running = (i * 13) % 37;
    e.kvUsage = <f64>((i * 37) % 80) / 100.0;
    e.maxLoras = 4;
    e.kvBlockSize = 16;
    e.kvBlockCount = 20000;
    e.runningAdapters = i % 3 == 0 ? ["sql-lora"] : [];
    endpoints.push(e);
  }
  scheduler = new Scheduler(seed, cfg, n);
  scheduler.syncEndpoints(endpoints);
  sinceSnapshot = 0;
  return n;
}

export function setRequestsPerSnapshot(n: i32): void {
  requestsPerSnapshot = n;
}

/** A new snapshot arrived: what this VM dispatched is now part of the scraped metrics. */
export function beginSnapshot(): void {
  sinceSnapshot = 1;
  for (let i = 0; i < endpoints.length; i++) {
    endpoints[i].inflightRequests = 0;
    endpoints[i].inflightPromptTokens = 0;
  }
}

/** Applies params "key=value,key=value" (UTF-8, len bytes in the input buffer) to the profile. */
export function configure(len: i32): void {
  const cfg = scheduler.config.clone();
  const text = String.UTF8.decodeUnsafe(changetype<usize>(input), <usize>len);
  const parts = text.split(",");
  for (let i = 0; i < parts.length; i++) {
    const kv = parts[i].split("=");
    if (kv.length == 2) cfg.setParam(kv[0].trim(), parseFloat(kv[1].trim()));
  }
  scheduler.configure(cfg);
}

/** Sets a field of endpoint i (tests): 0 waiting, 1 running, 2 kvUsage×10000, 3 ready, 4 stale. */
export function setEndpoint(i: i32, field: i32, value: i32): void {
  const e = endpoints[i];
  if (field == 0) e.waiting = value;
  else if (field == 1) e.running = value;
  else if (field == 2) e.kvUsage = <f64>value / 10000.0;
  else if (field == 3) e.ready = value != 0;
  else if (field == 4) e.stale = value != 0;
}

/** Hashes the prompt of promptLen bytes in the input buffer into the request. Returns the block count. */
export function loadPrompt(promptLen: i32, priority: i32): i32 {
  req.reset();
  req.targetModel = "meta-llama/Llama-3.1-8B-Instruct";
  req.priority = priority;
  req.promptBytes = promptLen;
  req.promptTokens = promptLen / 4;
  req.hashCount = computeBlockHashes(
    changetype<usize>(input),
    promptLen,
    changetype<usize>(modelBytes),
    modelBytes.byteLength,
    hashes,
  );
  req.hashes = hashes;
  return req.hashCount;
}

/** Schedules the loaded request and records the dispatch; returns the picked slot or −status. */
export function scheduleLoaded(): i32 {
  if (requestsPerSnapshot > 0 && sinceSnapshot++ == requestsPerSnapshot) beginSnapshot();
  const status = scheduler.schedule(endpoints, req);
  if (status != 0) return -status;
  const pick = scheduler.result[0];
  scheduler.onPicked(endpoints, pick, req);
  return endpoints[pick].slot;
}

/** The whole decision for a prompt in the input buffer: hash + schedule + bookkeeping. */
export function decide(promptLen: i32, priority: i32): i32 {
  loadPrompt(promptLen, priority);
  return scheduleLoaded();
}

export function resultCount(): i32 {
  return scheduler.resultCount;
}

/** Where the last text result (describeBuiltin) is; its length is what that call returned. */
export function outputBuffer(): usize {
  return changetype<usize>(output);
}

/**
 * The built-in scheduling config of profile 0 default / 1 gie-default / 2 legacy as canonical JSON
 * (describeSpec), UTF-8 in outputBuffer(); returns its length. Tests compare it with config/scheduling/.
 */
export function describeBuiltin(profile: i32): i32 {
  output = String.UTF8.encode(
    describeSpec(builtinSpec(PROFILES[profile < 0 || profile >= PROFILES.length ? 0 : profile])),
  );
  return output.byteLength;
}

/** The registered plugin types, comma-separated, UTF-8 in outputBuffer(); returns the length. */
export function registryTypes(): i32 {
  output = String.UTF8.encode(registry().types.join(","));
  return output.byteLength;
}
