// Loads build/snapshot-probe.wasm (the AssemblyScript decoder compiled without the SDK) for tests.
import { readFileSync } from "node:fs";

const WASM = new URL("../../build/snapshot-probe.wasm", import.meta.url);

export interface ProbeResult {
  code: number;
  /** The decoded snapshot's JSON on success, the error message otherwise. */
  text: string;
}

export interface SnapshotProbe {
  decode(bytes: Uint8Array): ProbeResult;
  crc32(bytes: Uint8Array): number;
}

interface ProbeExports {
  memory: WebAssembly.Memory;
  inputBuffer(len: number): number;
  decode(len: number): number;
  outputPtr(): number;
  outputLen(): number;
  crc32(len: number): number;
}

export async function loadSnapshotProbe(): Promise<SnapshotProbe> {
  const { instance } = await WebAssembly.instantiate(readFileSync(WASM), {
    env: {
      abort(): never {
        throw new Error("snapshot probe aborted (the decoder trapped)");
      },
    },
  });
  const x = instance.exports as unknown as ProbeExports;
  const put = (bytes: Uint8Array): void => {
    const ptr = x.inputBuffer(bytes.length);
    new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
  };
  return {
    decode(bytes) {
      put(bytes);
      const code = x.decode(bytes.length);
      const text = Buffer.from(new Uint8Array(x.memory.buffer, x.outputPtr(), x.outputLen())).toString(
        "utf8",
      );
      return { code, text };
    },
    crc32(bytes) {
      put(bytes);
      return x.crc32(bytes.length) >>> 0;
    },
  };
}
