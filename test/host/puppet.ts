// Test support: a WAT "puppet" proxy-wasm module. Every proxy_on_* export calls the test-only import
// test.hook(event, a, b, c, d, e); the test's handler runs host calls through re-exported imports
// (h_<name>), so each behaviour is exercised through the real shim, real memory and a real instance.
// A handler returning TRAP makes the guest execute `unreachable`.
import wabtInit from "wabt";
import { ENV_COMMON, ENV_ABI_0_2_1, WASI } from "../../host/verify.ts";
import { EnvoyProcess, type PluginConfig, type WasmPlugin } from "../../host/index.ts";

export const TRAP = -1;

const CALLBACKS: Array<[name: string, params: number, returns: boolean]> = [
  ["_start", 0, false],
  ["proxy_on_context_create", 2, false],
  ["proxy_on_vm_start", 2, true],
  ["proxy_on_configure", 2, true],
  ["proxy_on_tick", 1, false],
  ["proxy_on_queue_ready", 2, false],
  ["proxy_on_request_headers", 3, true],
  ["proxy_on_request_body", 3, true],
  ["proxy_on_response_headers", 3, true],
  ["proxy_on_response_body", 3, true],
  ["proxy_on_http_call_response", 5, false],
  ["proxy_on_log", 1, false],
  ["proxy_on_done", 1, true],
  ["proxy_on_delete", 1, false],
  ["proxy_on_request_trailers", 2, true],
];
export type Callback =
  | "_start"
  | "proxy_on_context_create"
  | "proxy_on_vm_start"
  | "proxy_on_configure"
  | "proxy_on_tick"
  | "proxy_on_queue_ready"
  | "proxy_on_request_headers"
  | "proxy_on_request_body"
  | "proxy_on_response_headers"
  | "proxy_on_response_body"
  | "proxy_on_http_call_response"
  | "proxy_on_log"
  | "proxy_on_done"
  | "proxy_on_delete"
  | "proxy_on_request_trailers";

function wasmType(t: string): string {
  return t
    .split(" ")
    .filter(Boolean)
    .map((x) => x)
    .join(" ");
}

/** Builds the puppet WAT; `extra` lets a test add or replace raw WAT (e.g. drop malloc). */
export function puppetWat(opts: { omit?: string[]; extraImports?: string } = {}): string {
  const omit = new Set(opts.omit ?? []);
  const hostFns = { ...ENV_COMMON, ...ENV_ABI_0_2_1 };
  let imports = "";
  let reexports = "";
  for (const [name, [params, results]] of Object.entries(hostFns)) {
    const p = params ? `(param ${wasmType(params)})` : "";
    const r = results ? `(result ${results})` : "";
    imports += `(import "env" "${name}" (func $${name} ${p} ${r}))\n`;
    reexports += `(export "h_${name}" (func $${name}))\n`;
  }
  for (const name of [
    "fd_write",
    "random_get",
    "environ_sizes_get",
    "environ_get",
    "clock_time_get",
    "proc_exit",
    "fd_read",
    "fd_seek",
    "poll_oneoff",
  ]) {
    const [params, results] = WASI[name]!;
    imports += `(import "wasi_snapshot_preview1" "${name}" (func $wasi_${name} (param ${params}) ${results ? `(result ${results})` : ""}))\n`;
    reexports += `(export "w_${name}" (func $wasi_${name}))\n`;
  }
  let callbacks = "";
  CALLBACKS.forEach(([name, n, returns], event) => {
    if (omit.has(name)) return;
    const params = Array.from({ length: n }, () => "i32").join(" ");
    const args = Array.from({ length: 5 }, (_, i) => (i < n ? `(local.get ${i})` : "(i32.const 0)")).join(
      " ",
    );
    callbacks += `(func (export "${name}") ${n ? `(param ${params})` : ""} ${returns ? "(result i32)" : ""}
      (local.set $r (call $hook (i32.const ${event}) ${args}))
      (if (i32.eq (local.get $r) (i32.const -1)) (then unreachable))
      ${returns ? "(local.get $r)" : ""})\n`.replace("(local.set $r", `(local $r i32) (local.set $r`);
  });
  // Fix: locals must precede instructions; the replace above places (local $r i32) first in the body.
  return `(module
${imports}
(import "test" "hook" (func $hook (param i32 i32 i32 i32 i32 i32) (result i32)))
${opts.extraImports ?? ""}
(memory (export "memory") 2)
(global $bump (mut i32) (i32.const 65536))
${
  omit.has("malloc")
    ? ""
    : `(func (export "malloc") (param $n i32) (result i32) (local $p i32)
  (local.set $p (global.get $bump))
  (global.set $bump (i32.add (global.get $bump) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
  (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
    (then (drop (memory.grow (i32.add (i32.div_u (local.get $n) (i32.const 65536)) (i32.const 1))))))
  (local.get $p))`
}
${omit.has("abi") ? "" : `(func (export "proxy_abi_version_0_2_1"))`}
${callbacks}
${reexports}
)`;
}

export async function compileWat(wat: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat("puppet.wat", wat);
  try {
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

let cached: Uint8Array | undefined;
export async function puppetBinary(): Promise<Uint8Array> {
  cached ??= await compileWat(puppetWat());
  return cached;
}

/** Guest-side helpers for one worker VM: scratch memory below the malloc heap. */
export class Guest {
  private cursor = 1024;
  constructor(
    readonly worker: number,
    private readonly exportsOf: () => WebAssembly.Exports,
  ) {}

  reset(): void {
    this.cursor = 1024;
  }
  private get ex(): Record<string, (...a: unknown[]) => unknown> {
    return this.exportsOf() as Record<string, (...a: unknown[]) => unknown>;
  }
  private get mem(): Uint8Array {
    return new Uint8Array((this.exportsOf()["memory"] as WebAssembly.Memory).buffer);
  }
  alloc(n: number): number {
    const p = this.cursor;
    this.cursor += (n + 7) & ~7;
    if (this.cursor > 60000) throw new Error("scratch exhausted");
    return p;
  }
  put(data: string | Uint8Array): [number, number] {
    const b = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const p = this.alloc(b.length);
    this.mem.set(b, p);
    return [p, b.length];
  }
  u32(p: number): number {
    return new DataView(this.mem.buffer).getUint32(p, true);
  }
  setU32(p: number, v: number): void {
    new DataView(this.mem.buffer).setUint32(p, v, true);
  }
  u64(p: number): bigint {
    return new DataView(this.mem.buffer).getBigUint64(p, true);
  }
  bytes(p: number, n: number): Uint8Array {
    return this.mem.slice(p, p + n);
  }
  /** Calls host function env.<name> through the guest's re-export. */
  call(name: string, ...args: Array<number | bigint>): number {
    const f = this.ex["h_" + name] ?? this.ex["w_" + name];
    if (!f) throw new Error(`no host re-export for ${name}`);
    return f(...args) as number;
  }
  /** Host call with a trailing (ptr, size) return pair; returns the result and the copied-out bytes. */
  callOut(name: string, ...args: number[]): { r: number; data: Uint8Array; ptr: number } {
    const pp = this.alloc(4);
    const sp = this.alloc(4);
    const r = this.call(name, ...args, pp, sp);
    const ptr = this.u32(pp);
    return { r, ptr, data: r === 0 ? this.bytes(ptr, this.u32(sp)) : new Uint8Array(0) };
  }
  text(d: Uint8Array): string {
    return new TextDecoder().decode(d);
  }
  getHeader(map: number, key: string): { r: number; value: string } {
    const o = this.callOut("proxy_get_header_map_value", map, ...this.put(key));
    return { r: o.r, value: this.text(o.data) };
  }
  replaceHeader(map: number, key: string, value: string): number {
    return this.call("proxy_replace_header_map_value", map, ...this.put(key), ...this.put(value));
  }
  addHeader(map: number, key: string, value: string): number {
    return this.call("proxy_add_header_map_value", map, ...this.put(key), ...this.put(value));
  }
  log(level: number, msg: string): number {
    return this.call("proxy_log", level, ...this.put(msg));
  }
  bufferBytes(type: number, start = 0, len = 0xffffffff): { r: number; text: string } {
    const o = this.callOut("proxy_get_buffer_bytes", type, start, len >>> 0);
    return { r: o.r, text: this.text(o.data) };
  }
  property(path: string): { r: number; data: Uint8Array } {
    const o = this.callOut("proxy_get_property", ...this.put(path));
    return { r: o.r, data: o.data };
  }
  sharedGet(key: string): { r: number; value: string; cas: number } {
    const cp = this.alloc(4);
    const pp = this.alloc(4);
    const sp = this.alloc(4);
    const r = this.call("proxy_get_shared_data", ...this.put(key), pp, sp, cp);
    return {
      r,
      value: r === 0 ? this.text(this.bytes(this.u32(pp), this.u32(sp))) : "",
      cas: r === 0 ? this.u32(cp) : 0,
    };
  }
  sharedSet(key: string, value: string, cas = 0): number {
    return this.call("proxy_set_shared_data", ...this.put(key), ...this.put(value), cas);
  }
  sendLocalResponse(
    status: number,
    details: string,
    body: string,
    headers: Uint8Array = new Uint8Array(0),
    grpc = -1,
  ): number {
    return this.call(
      "proxy_send_local_response",
      status,
      ...this.put(details),
      ...this.put(body),
      ...this.put(headers),
      grpc,
    );
  }
}

export type Handler = (g: Guest, ...args: number[]) => number | void;
export type Handlers = Partial<Record<Callback, Handler>>;

export interface PuppetRun {
  plugin: WasmPlugin;
  calls: string[];
  guests: Map<number, Guest>;
}

/** Loads the puppet with per-callback handlers; records every callback as "worker:name(args)". */
export async function loadPuppet(
  envoy: EnvoyProcess,
  handlers: Handlers,
  cfg: Partial<PluginConfig> = {},
  code?: Uint8Array,
): Promise<PuppetRun> {
  const calls: string[] = [];
  const guests = new Map<number, Guest>();
  const plugin = await envoy.loadPlugin(code ?? (await puppetBinary()), {
    vmId: "vm",
    name: "puppet",
    rootId: "root",
    workers: 1,
    ...cfg,
    testImports: ({ workerIndex, exports }) => {
      const g = new Guest(workerIndex, exports);
      guests.set(workerIndex, g);
      return {
        hook: (event: number, a: number, b: number, c: number, d: number, e: number) => {
          const [name, n] = CALLBACKS[event]!;
          calls.push(`${workerIndex}:${name}(${[a, b, c, d, e].slice(0, n).join(",")})`);
          const h = handlers[name as Callback];
          g.reset();
          const r = h ? h(g, a, b, c, d, e) : undefined;
          if (r !== undefined) return r;
          return name === "proxy_on_vm_start" || name === "proxy_on_configure" || name === "proxy_on_done"
            ? 1
            : 0;
        },
      };
    },
  });
  return { plugin, calls, guests };
}

export function newEnvoy(opts: ConstructorParameters<typeof EnvoyProcess>[0] = {}): EnvoyProcess {
  return new EnvoyProcess(opts);
}
