// Import/export verification before instantiation, with Envoy's error texts
// (envoy-proxy-wasm.md §1 "Imports Envoy lacks", "Exports", "ABI detection").
import { WasmLoadError } from "./types.ts";

type Sig = readonly [params: string, results: string];
const I32 = (n: number): string => Array(n).fill("i32").join(" ");
const S = (n: number, params?: string): Sig => [params ?? I32(n), "i32"];

/** env.* functions Envoy registers for every ABI version (all i32 → i32 unless noted). */
export const ENV_COMMON: Record<string, Sig> = {
  proxy_log: S(3),
  proxy_get_status: S(3),
  proxy_set_property: S(4),
  proxy_get_property: S(4),
  proxy_send_local_response: S(8),
  proxy_get_shared_data: S(5),
  proxy_set_shared_data: S(5),
  proxy_register_shared_queue: S(3),
  proxy_resolve_shared_queue: S(5),
  proxy_dequeue_shared_queue: S(3),
  proxy_enqueue_shared_queue: S(3),
  proxy_get_header_map_value: S(5),
  proxy_add_header_map_value: S(5),
  proxy_replace_header_map_value: S(5),
  proxy_remove_header_map_value: S(3),
  proxy_get_header_map_pairs: S(3),
  proxy_set_header_map_pairs: S(3),
  proxy_get_header_map_size: S(2),
  proxy_get_buffer_status: S(3),
  proxy_get_buffer_bytes: S(5),
  proxy_set_buffer_bytes: S(5),
  proxy_http_call: S(10),
  proxy_grpc_call: S(12),
  proxy_grpc_stream: S(9),
  proxy_grpc_cancel: S(1),
  proxy_grpc_close: S(1),
  proxy_grpc_send: S(4),
  proxy_set_tick_period_milliseconds: S(1),
  proxy_get_current_time_nanoseconds: S(1),
  proxy_define_metric: S(4),
  proxy_increment_metric: S(2, "i32 i64"),
  proxy_record_metric: S(2, "i32 i64"),
  proxy_get_metric: S(2),
  proxy_set_effective_context: S(1),
  proxy_done: S(0, ""),
  proxy_call_foreign_function: S(6),
  pthread_equal: S(2),
  emscripten_notify_memory_growth: ["i32", ""],
  envoy_resolve_dns: S(3),
};
const ENV_ABI_0_1_0: Record<string, Sig> = {
  proxy_get_configuration: S(2),
  proxy_continue_request: S(0, ""),
  proxy_continue_response: S(0, ""),
  proxy_clear_route_cache: S(0, ""),
};
const ENV_ABI_0_2_0: Record<string, Sig> = {
  proxy_continue_stream: S(1),
  proxy_close_stream: S(1),
};
export const ENV_ABI_0_2_1: Record<string, Sig> = { ...ENV_ABI_0_2_0, proxy_get_log_level: S(1) };

/**
 * The WASI functions Envoy 1.35 registers under both wasi_snapshot_preview1 and wasi_unstable
 * (proxy-wasm-cpp-host 65bb78f include/proxy-wasm/exports.h FOR_ALL_WASI_FUNCTIONS). Later cpp-host
 * commits add more; a module importing those does not load in Envoy 1.35.
 */
export const WASI: Record<string, Sig> = {
  fd_write: S(4),
  fd_read: S(4),
  fd_seek: S(4, "i32 i64 i32 i32"),
  fd_close: S(1),
  fd_fdstat_get: S(2),
  fd_fdstat_set_flags: S(2),
  environ_get: S(2),
  environ_sizes_get: S(2),
  args_get: S(2),
  args_sizes_get: S(2),
  clock_time_get: S(3, "i32 i64 i32"),
  random_get: S(2),
  sched_yield: S(0, ""),
  poll_oneoff: S(4),
  proc_exit: ["i32", ""],
  path_open: S(9, "i32 i32 i32 i32 i32 i64 i64 i32 i32"),
  fd_prestat_get: S(2),
  fd_prestat_dir_name: S(3),
};
export const WASI_MODULES = ["wasi_snapshot_preview1", "wasi_unstable"];

export type AbiVersion = "0.1.0" | "0.2.0" | "0.2.1";

function envFunctionsFor(abi: AbiVersion): Record<string, Sig> {
  if (abi === "0.1.0") return { ...ENV_COMMON, ...ENV_ABI_0_1_0 };
  if (abi === "0.2.0") return { ...ENV_COMMON, ...ENV_ABI_0_2_0 };
  return { ...ENV_COMMON, ...ENV_ABI_0_2_1 };
}

export interface ParsedImport {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global";
  /** For functions when parsed from bytes: [params, results] as cpp-host prints them (space-separated). */
  sig?: Sig;
}

export interface VerifyResult {
  abi: AbiVersion | undefined;
  imports: ParsedImport[];
  exports: string[];
  problems: string[];
}

/** cpp-host's printValTypes: space-separated kinds, "void" when empty. */
function printTypes(t: string): string {
  return t === "" ? "void" : t;
}

/**
 * Checks that Envoy would link this module. `allowModules` names extra import modules to ignore
 * (test-only host functions).
 */
export function verifyModule(
  code: Uint8Array | WebAssembly.Module,
  allowModules: string[] = [],
): VerifyResult {
  const module = code instanceof WebAssembly.Module ? code : new WebAssembly.Module(code as BufferSource);
  const exports = WebAssembly.Module.exports(module).map((e) => e.name);
  const imports: ParsedImport[] =
    code instanceof WebAssembly.Module
      ? WebAssembly.Module.imports(module).map((i) => ({
          module: i.module,
          name: i.name,
          kind: i.kind as ParsedImport["kind"],
        }))
      : parseImports(code);
  const problems: string[] = [];
  const names = new Set(exports);
  const abi: AbiVersion | undefined = names.has("proxy_abi_version_0_2_1")
    ? "0.2.1"
    : names.has("proxy_abi_version_0_2_0")
      ? "0.2.0"
      : names.has("proxy_abi_version_0_1_0")
        ? "0.1.0"
        : undefined;
  if (!abi) problems.push("Missing or unknown Proxy-Wasm ABI version");
  const env = envFunctionsFor(abi ?? "0.2.1");
  for (const im of imports) {
    if (allowModules.includes(im.module)) continue;
    const want =
      im.module === "env" ? env[im.name] : WASI_MODULES.includes(im.module) ? WASI[im.name] : undefined;
    if (!want || im.kind !== "function") {
      problems.push(`Failed to load Wasm module due to a missing import: ${im.module}.${im.name}`);
      continue;
    }
    if (im.sig && (im.sig[0] !== want[0] || im.sig[1] !== want[1])) {
      problems.push(
        `Failed to load Wasm module due to an import type mismatch: ${im.module}.${im.name}, ` +
          `want: ${printTypes(im.sig[0])} -> ${printTypes(im.sig[1])}, ` +
          `but host exports: ${printTypes(want[0])} -> ${printTypes(want[1])}`,
      );
    }
  }
  if (!names.has("memory")) problems.push("Wasm module is missing memory export.");
  if (!names.has("malloc") && !names.has("proxy_on_memory_allocate"))
    problems.push("Wasm module is missing malloc function.");
  return { abi, imports, exports, problems };
}

/** Throws WasmLoadError carrying Envoy's text for the first problem (all problems in `.message` lines). */
export function assertLoadable(
  code: Uint8Array | WebAssembly.Module,
  allowModules: string[] = [],
): VerifyResult {
  const r = verifyModule(code, allowModules);
  if (r.problems.length > 0) throw new WasmLoadError(r.problems.join("\n"));
  return r;
}

// --- Minimal wasm binary reader: the type and import sections only. ---

const VALTYPES: Record<number, string> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

export function parseImports(bytes: Uint8Array): ParsedImport[] {
  let off = 8; // magic + version
  const u8 = (): number => {
    if (off >= bytes.length) throw new WasmLoadError("truncated wasm module");
    return bytes[off++]!;
  };
  const leb = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = u8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  const name = (): string => {
    const n = leb();
    const s = new TextDecoder().decode(bytes.subarray(off, off + n));
    off += n;
    return s;
  };
  const limits = (): void => {
    const flags = u8();
    leb();
    if (flags & 1) leb();
  };
  const types: Sig[] = [];
  const out: ParsedImport[] = [];
  while (off < bytes.length) {
    const id = u8();
    const size = leb();
    const end = off + size;
    if (id === 1) {
      const n = leb();
      for (let i = 0; i < n; i++) {
        u8(); // 0x60
        const np = leb();
        const ps: string[] = [];
        for (let j = 0; j < np; j++) ps.push(VALTYPES[u8()] ?? "?");
        const nr = leb();
        const rs: string[] = [];
        for (let j = 0; j < nr; j++) rs.push(VALTYPES[u8()] ?? "?");
        types.push([ps.join(" "), rs.join(" ")]);
      }
    } else if (id === 2) {
      const n = leb();
      for (let i = 0; i < n; i++) {
        const module = name();
        const field = name();
        const kind = u8();
        if (kind === 0) out.push({ module, name: field, kind: "function", sig: types[leb()] });
        else if (kind === 1) {
          u8();
          limits();
          out.push({ module, name: field, kind: "table" });
        } else if (kind === 2) {
          limits();
          out.push({ module, name: field, kind: "memory" });
        } else {
          u8();
          u8();
          out.push({ module, name: field, kind: "global" });
        }
      }
      return out;
    }
    off = end;
  }
  return out;
}
