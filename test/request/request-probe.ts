// Loads build/request-probe.wasm (the pure request/prefix modules compiled with plain asc) and wraps
// its exports for tests and benchmarks. Rebuilds the wasm first when it is missing or older than its
// sources, so tests always exercise the real compiled code.
import { readFileSync } from "node:fs";
import { ensureProbeBuilt } from "../support/probe-build.ts";

export const KIND = { auto: 0, completions: 1, chat: 2, embeddings: 3, responses: 4, messages: 5 } as const;
export const SCAN = {
  ok: 0,
  invalidJson: 1,
  tooDeep: 2,
  notObject: 3,
  modelMissing: 4,
  modelNotString: 5,
  streamNotBool: 6,
  empty: 7,
  incomplete: 8,
  modelDuplicate: 9,
} as const;

interface Exports {
  memory: WebAssembly.Memory;
  inputBuffer(len: number): number;
  auxBuffer(len: number): number;
  setPromptLimit(limit: number): void;
  validate(len: number): number;
  scan(len: number): number;
  errorPos(): number;
  stream(): number;
  spanStart(field: number): number;
  spanEnd(field: number): number;
  modelEscaped(): number;
  model_(): number;
  modelPtr(): number;
  prompt_(kind: number): number;
  promptPtr(): number;
  promptTruncated(): number;
  hashBlocks(): number;
  hashesPtr(): number;
  processRequest(len: number, kind: number): number;
  rewrite(len: number, newLen: number): number;
  outputPtr(): number;
  errorMessage(code: number, pos: number): number;
  hash64(len: number, seed: bigint): bigint;
  indexReset(maxEndpoints: number, maxEntries: number): void;
  loadHashes(n: number): number;
  indexAdd(endpoint: number): void;
  indexMatch(): number;
  matchPtr(): number;
  indexRemove(endpoint: number): void;
  indexSetCapacity(endpoint: number, cap: number): void;
  indexSize(): number;
  indexSizeOf(endpoint: number): number;
  indexDistinct(): number;
  scanHead(len: number): number;
  headTruncated(): number;
  headTopKey(): number;
  closeHead(len: number): number;
  watchRest(len: number, chunk: number): number;
}

export interface ScanOutcome {
  error: number;
  errorPos: number;
  stream: number;
  model?: string;
  modelEscaped: boolean;
}

export class RequestProbe {
  readonly x: Exports;
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(x: Exports) {
    this.x = x;
  }

  private bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, ptr, len).slice();
  }

  /** Copies the body into wasm memory; returns its length. */
  load(body: Uint8Array | string): number {
    const b = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const ptr = this.x.inputBuffer(b.length);
    new Uint8Array(this.x.memory.buffer, ptr, b.length).set(b);
    return b.length;
  }

  validate(body: Uint8Array | string): number {
    return this.x.validate(this.load(body));
  }

  scan(body: Uint8Array | string): ScanOutcome {
    const len = this.load(body);
    const error = this.x.scan(len);
    const out: ScanOutcome = {
      error,
      errorPos: this.x.errorPos(),
      stream: this.x.stream(),
      modelEscaped: this.x.modelEscaped() !== 0,
    };
    if (error === SCAN.ok) out.model = this.utf8.decode(this.bytes(this.x.modelPtr(), this.x.model_()));
    return out;
  }

  /** Prompt bytes of the last successful scan. */
  prompt(kind: number): Uint8Array {
    const n = this.x.prompt_(kind);
    return this.bytes(this.x.promptPtr(), n);
  }

  /** Block hashes of the current prompt/model (after scan + prompt). */
  hashes(): bigint[] {
    const n = this.x.hashBlocks();
    return [...new BigUint64Array(this.x.memory.buffer, this.x.hashesPtr(), n)];
  }

  rewrite(body: Uint8Array | string, newModel: string): Uint8Array {
    const len = this.load(body);
    if (this.x.scan(len) !== SCAN.ok) throw new Error("rewrite needs a valid body");
    const name = new TextEncoder().encode(newModel);
    new Uint8Array(this.x.memory.buffer, this.x.auxBuffer(name.length), name.length).set(name);
    const n = this.x.rewrite(len, name.length);
    return this.bytes(this.x.outputPtr(), n);
  }

  /** Scans the first `len` bytes of `body` as a body that may continue; the closed prefix when cut. */
  scanHead(
    body: Uint8Array,
    len: number,
  ): { error: number; truncated: boolean; topKey: number; closed?: Uint8Array } {
    this.load(body);
    const error = this.x.scanHead(len);
    const truncated = this.x.headTruncated() !== 0;
    const out = { error, truncated, topKey: this.x.headTopKey() } as {
      error: number;
      truncated: boolean;
      topKey: number;
      closed?: Uint8Array;
    };
    if (truncated) {
      const n = this.x.closeHead(len);
      if (n >= 0) out.closed = this.bytes(this.x.outputPtr(), n);
    }
    return out;
  }

  /** Top-level `model` keys in `body`, the first `head` bytes scanned, the rest watched in `chunk`s. */
  modelKeys(body: Uint8Array, head: number, chunk: number): number {
    const len = this.load(body);
    this.x.scanHead(head);
    return this.x.watchRest(len, chunk);
  }

  errorMessage(code: number, pos: number): string {
    const n = this.x.errorMessage(code, pos);
    return this.utf8.decode(this.bytes(this.x.outputPtr(), n));
  }

  hash64(data: Uint8Array, seed: bigint): bigint {
    return BigInt.asUintN(64, this.x.hash64(this.load(data), BigInt.asIntN(64, seed)));
  }

  loadHashes(hashes: readonly bigint[]): void {
    const ptr = this.x.inputBuffer(hashes.length * 8);
    new BigUint64Array(this.x.memory.buffer, ptr, hashes.length).set(hashes);
    this.x.loadHashes(hashes.length);
  }

  /** Matched leading blocks per endpoint slot for the loaded hashes, and the longest match. */
  match(endpoints: number): { best: number; perEndpoint: number[] } {
    const best = this.x.indexMatch();
    return { best, perEndpoint: [...new Int32Array(this.x.memory.buffer, this.x.matchPtr(), endpoints)] };
  }
}

export function loadRequestProbe(): RequestProbe {
  const wasmPath = ensureProbeBuilt("request-probe", [
    "assembly/request",
    "assembly/prefix",
    "assembly/testing",
  ]);
  const module = new WebAssembly.Module(readFileSync(wasmPath));
  const instance = new WebAssembly.Instance(module, {
    env: {
      // AssemblyScript's abort(message, file, line, column): surface it as a JS error.
      abort(_msg: number, _file: number, line: number, col: number): never {
        throw new Error(`request-probe aborted at line ${line}:${col}`);
      },
    },
  });
  return new RequestProbe(instance.exports as unknown as Exports);
}
