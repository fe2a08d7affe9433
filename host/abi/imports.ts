// The env.proxy_* shim: guest pointers ↔ values, WasmResult codes. A bad pointer never throws into
// the guest; it returns InvalidMemoryAccess (6). Policy lives in the VM and the stream, not here.
import { deflateSync, inflateSync } from "node:zlib";
import { BadPointer, deserializePairs, serializePairs, utf8Encoder } from "./memory.ts";
import type { GuestHost, StreamSide } from "./guest-host.ts";
import { type HeaderList, BufferType, MapType, WasmResult } from "../types.ts";

const R = WasmResult;
type Fn = (...a: never[]) => number | void;

/** Wraps a host function so BadPointer becomes InvalidMemoryAccess (fixed arity: no rest-arg allocation). */
function safe(f: (...a: never[]) => number): Fn {
  const g = f as unknown as (...a: unknown[]) => number;
  return (
    a?: unknown,
    b?: unknown,
    c?: unknown,
    d?: unknown,
    e?: unknown,
    f2?: unknown,
    h?: unknown,
    i?: unknown,
    j?: unknown,
    k?: unknown,
    l?: unknown,
    m?: unknown,
  ) => {
    try {
      return g(a, b, c, d, e, f2, h, i, j, k, l, m);
    } catch (err) {
      if (err instanceof BadPointer) return R.InvalidMemoryAccess;
      throw err;
    }
  };
}

function headerBytes(map: HeaderList): number {
  let n = 0;
  for (const [k, v] of map) n += utf8Encoder.encode(k).length + utf8Encoder.encode(v).length;
  return n;
}

/** Foreign functions Envoy registers that this host does not implement (→ Unimplemented, not NotFound). */
const KNOWN_FOREIGN = new Set([
  "verify_signature",
  "sign",
  "set_envoy_filter_state",
  "declare_property",
  "expr_create",
  "expr_evaluate",
  "expr_delete",
]);

export function buildImports(vm: GuestHost): Record<string, Fn> {
  const mem = () => vm.memory;
  const str = (p: number, s: number) => vm.memory.string(p, s);
  const stream = (): StreamSide | undefined => vm.activeStream();

  /** envoy-proxy-wasm.md §2 "Map availability": undefined → BadArgument, null → NotFound. */
  const readMap = (type: number): HeaderList | null | undefined => {
    if (type === MapType.HttpCallResponseHeaders) return vm.httpResponse?.headers;
    if (type === MapType.HttpCallResponseTrailers) return vm.httpResponse?.trailers;
    if (type > 3) return undefined;
    return stream()?.readMap(type);
  };
  const writeMap = (type: number): HeaderList | undefined =>
    type > 3 ? undefined : stream()?.writeMap(type);

  const getBuffer = (type: number): Uint8Array | undefined => {
    switch (type) {
      case BufferType.VmConfiguration:
        return vm.vmConfiguration;
      case BufferType.PluginConfiguration:
        // Readable only during on_configure (envoy-proxy-wasm.md §1 "Call order" 2).
        return vm.configurationReadable ? vm.activePlugin()?.pluginConfiguration : undefined;
      case BufferType.HttpCallResponseBody:
        return vm.httpResponse?.body;
      case BufferType.HttpRequestBody:
      case BufferType.HttpResponseBody:
        return stream()?.getBuffer(type);
      default:
        return undefined;
    }
  };

  const property = (path: string): Uint8Array | undefined => {
    const plugin = vm.activePlugin();
    const extra = plugin?.properties.get(path);
    if (extra) return extra;
    switch (path) {
      case "plugin_name":
        return utf8Encoder.encode(plugin?.name ?? "");
      case "plugin_root_id":
        return utf8Encoder.encode(plugin?.rootId ?? "");
      case "plugin_vm_id":
        return utf8Encoder.encode(vm.vmId);
    }
    return stream()?.property(path);
  };

  const env: Record<string, Fn> = {
    proxy_log: safe((level: number, p: number, s: number) => {
      vm.restrict(true, true);
      if (level >>> 0 > 5) return R.BadArgument;
      vm.log(level, str(p, s));
      return R.Ok;
    }),
    proxy_get_log_level: safe((ptr: number) => {
      vm.restrict(false); // not in WasmBase::startVm's allow-list
      mem().setU32(ptr, vm.logLevel);
      return R.Ok;
    }),
    proxy_get_status: safe((codePtr: number, msgPtr: number, msgSize: number) => {
      vm.restrict(false);
      mem().setU32(codePtr, vm.status.code);
      mem().copyOut(utf8Encoder.encode(vm.status.message), msgPtr, msgSize);
      return R.Ok;
    }),

    // --- properties ---
    proxy_get_property: safe((p: number, s: number, rp: number, rs: number) => {
      vm.restrict(false);
      const v = property(str(p, s));
      if (!v) return R.NotFound;
      mem().copyOut(v, rp, rs);
      return R.Ok;
    }),
    proxy_set_property: safe((p: number, s: number, vp: number, vs: number) => {
      vm.restrict(false);
      const path = str(p, s);
      const value = mem().copy(vp, vs);
      const st = stream();
      return st ? st.setProperty(path, value) : R.NotFound;
    }),

    // --- header maps ---
    proxy_get_header_map_value: safe((type: number, kp: number, ks: number, rp: number, rs: number) => {
      vm.restrict(false);
      if (type >>> 0 > 7) return R.BadArgument;
      const key = str(kp, ks).toLowerCase();
      const map = readMap(type);
      if (map === undefined) return R.BadArgument;
      if (map === null) return R.NotFound;
      // Only the first value of a repeated header.
      for (const [k, v] of map) {
        if (k === key) {
          mem().copyOut(utf8Encoder.encode(v), rp, rs);
          return R.Ok;
        }
      }
      return R.NotFound;
    }),
    proxy_get_header_map_pairs: safe((type: number, rp: number, rs: number) => {
      vm.restrict(false);
      if (type >>> 0 > 7) return R.BadArgument;
      const map = readMap(type);
      if (map === undefined) return R.BadArgument;
      if (map === null) return R.NotFound;
      mem().copyOut(serializePairs(map), rp, rs);
      return R.Ok;
    }),
    proxy_get_header_map_size: safe((type: number, rp: number) => {
      vm.restrict(false);
      if (type >>> 0 > 7) return R.BadArgument;
      const map = readMap(type);
      if (map === undefined) return R.BadArgument;
      if (map === null) return R.NotFound;
      mem().setU32(rp, headerBytes(map)); // byte size, not a count
      return R.Ok;
    }),
    proxy_add_header_map_value: safe((type: number, kp: number, ks: number, vp: number, vs: number) => {
      vm.restrict(false);
      if (type >>> 0 > 7) return R.BadArgument;
      const k = str(kp, ks).toLowerCase();
      const v = str(vp, vs);
      const map = writeMap(type);
      if (!map) return R.BadArgument;
      map.push([k, v]);
      stream()!.afterMapWrite(type);
      return R.Ok;
    }),
    proxy_replace_header_map_value: safe((type: number, kp: number, ks: number, vp: number, vs: number) => {
      vm.restrict(false);
      if (type >>> 0 > 7) return R.BadArgument;
      const k = str(kp, ks).toLowerCase();
      const v = str(vp, vs);
      const map = writeMap(type);
      if (!map) return R.BadArgument;
      const i = map.findIndex(([n]) => n === k);
      if (i < 0) map.push([k, v]);
      else {
        map[i] = [k, v];
        for (let j = map.length - 1; j > i; j--) if (map[j]![0] === k) map.splice(j, 1);
      }
      stream()!.afterMapWrite(type);
      return R.Ok;
    }),
    proxy_remove_header_map_value: safe((type: number, kp: number, ks: number) => {
      vm.restrict(false);
      if (type >>> 0 > 7) return R.BadArgument;
      const k = str(kp, ks).toLowerCase();
      const map = writeMap(type);
      if (!map) return R.BadArgument;
      for (let j = map.length - 1; j >= 0; j--) if (map[j]![0] === k) map.splice(j, 1);
      stream()!.afterMapWrite(type);
      return R.Ok;
    }),
    proxy_set_header_map_pairs: safe((type: number, p: number, s: number) => {
      vm.restrict(false);
      if (type >>> 0 > 7) return R.BadArgument;
      const pairs = deserializePairs(mem().bytes(p, s));
      const map = writeMap(type);
      if (!map) return R.BadArgument;
      map.length = 0;
      for (const [k, v] of pairs) map.push([k.toLowerCase(), v]);
      stream()!.afterMapWrite(type);
      return R.Ok;
    }),

    // --- buffers ---
    proxy_get_buffer_status: safe((type: number, lenPtr: number, flagsPtr: number) => {
      vm.restrict(false);
      if (type >>> 0 > 8) return R.BadArgument;
      const b = getBuffer(type);
      if (!b) return R.NotFound;
      mem().setU32(lenPtr, b.length);
      mem().setU32(flagsPtr, 0); // Envoy never sets an end-of-stream flag here
      return R.Ok;
    }),
    proxy_get_buffer_bytes: safe((type: number, start: number, maxLen: number, rp: number, rs: number) => {
      vm.restrict(false);
      if (type >>> 0 > 8) return R.BadArgument;
      const b = getBuffer(type);
      if (!b) return R.NotFound;
      start >>>= 0;
      maxLen >>>= 0;
      if (start + maxLen > 0xffffffff) return R.BadArgument;
      const from = Math.min(start, b.length);
      mem().copyOut(b.subarray(from, Math.min(b.length, start + maxLen)), rp, rs);
      return R.Ok;
    }),
    proxy_set_buffer_bytes: safe((type: number, start: number, len: number, dp: number, ds: number) => {
      vm.restrict(false);
      if (type >>> 0 > 8) return R.BadArgument;
      const data = mem().copy(dp, ds);
      if (type !== BufferType.HttpRequestBody && type !== BufferType.HttpResponseBody) {
        return getBuffer(type) ? R.BadArgument : R.NotFound; // immutable buffers
      }
      const st = stream();
      if (!st) return R.NotFound;
      return st.setBuffer(type, start >>> 0, len >>> 0, data);
    }),

    // --- stream control ---
    proxy_send_local_response: safe(
      (
        status: number,
        dp: number,
        ds: number,
        bp: number,
        bs: number,
        hp: number,
        hs: number,
        grpc: number,
      ) => {
        vm.restrict(false);
        const details = str(dp, ds);
        const body = mem().copy(bp, bs);
        const headers = deserializePairs(mem().bytes(hp, hs));
        const st = stream();
        if (!st) return R.NotFound;
        return st.sendLocalResponse(status, details, body, headers, grpc);
      },
    ),
    proxy_continue_stream: safe((type: number) => {
      vm.restrict(false);
      if (type >>> 0 > 3) return R.BadArgument;
      if (type === 3) return R.Unimplemented;
      const st = stream();
      return st ? st.continueStream(type) : R.NotFound;
    }),
    proxy_close_stream: safe((type: number) => {
      vm.restrict(false);
      if (type >>> 0 > 3) return R.BadArgument;
      const st = stream();
      return st ? st.closeStream(type) : R.NotFound;
    }),
    proxy_set_effective_context: safe((id: number) => {
      vm.restrict(false);
      return vm.setEffectiveContext(id >>> 0) ? R.Ok : R.BadArgument;
    }),
    proxy_done: safe(() => {
      vm.restrict(false);
      return vm.done();
    }),

    // --- shared data and queues ---
    proxy_get_shared_data: safe((kp: number, ks: number, rp: number, rs: number, casPtr: number) => {
      vm.restrict(false);
      const e = vm.sharedData.get(vm.vmId, str(kp, ks));
      if (!e) return R.NotFound;
      mem().setU32(casPtr, e.cas);
      mem().copyOut(e.value, rp, rs);
      return R.Ok;
    }),
    proxy_set_shared_data: safe((kp: number, ks: number, vp: number, vs: number, cas: number) => {
      vm.restrict(false);
      return vm.sharedData.set(vm.vmId, str(kp, ks), mem().copy(vp, vs), cas >>> 0);
    }),
    proxy_register_shared_queue: safe((np: number, ns: number, tokenPtr: number) => {
      vm.restrict(false);
      const name = str(np, ns);
      mem().u32(tokenPtr); // validate before registering
      mem().setU32(tokenPtr, vm.queues.register(vm.vmId, name, vm.queueOwner()));
      return R.Ok;
    }),
    proxy_resolve_shared_queue: safe((vp: number, vs: number, np: number, ns: number, tokenPtr: number) => {
      vm.restrict(false);
      const vmId = str(vp, vs) || vm.vmId;
      const t = vm.queues.resolve(vmId, str(np, ns));
      if (t === undefined) return R.NotFound;
      mem().setU32(tokenPtr, t);
      return R.Ok;
    }),
    proxy_enqueue_shared_queue: safe((token: number, p: number, s: number) => {
      vm.restrict(false);
      return vm.queues.enqueue(token >>> 0, mem().copy(p, s));
    }),
    proxy_dequeue_shared_queue: safe((token: number, rp: number, rs: number) => {
      vm.restrict(false);
      const r = vm.queues.dequeue(token >>> 0);
      if (r.value) mem().copyOut(r.value, rp, rs);
      return r.result;
    }),

    // --- timers, time, metrics ---
    proxy_set_tick_period_milliseconds: safe((ms: number) => {
      vm.restrict(false);
      vm.setTickPeriod(ms >>> 0); // always the root context's timer
      return R.Ok;
    }),
    proxy_get_current_time_nanoseconds: safe((ptr: number) => {
      vm.restrict(false);
      mem().setU64(ptr, vm.clock.nowNs());
      return R.Ok;
    }),
    proxy_define_metric: safe((type: number, np: number, ns: number, idPtr: number) => {
      vm.restrict(false);
      const name = str(np, ns);
      // Envoy defines first and only then writes the id: a bad id pointer still defines the metric.
      const r = vm.metrics.define(type >>> 0, name);
      if (r.id !== undefined) mem().setU32(idPtr, r.id);
      return r.result;
    }),
    proxy_increment_metric: safe((id: number, delta: bigint) => {
      vm.restrict(false);
      return vm.metrics.increment(id >>> 0, delta);
    }),
    proxy_record_metric: safe((id: number, value: bigint) => {
      vm.restrict(false);
      return vm.metrics.record(id >>> 0, value);
    }),
    proxy_get_metric: safe((id: number, ptr: number) => {
      vm.restrict(false);
      const r = vm.metrics.get(id >>> 0);
      if (r.value !== undefined) mem().setU64(ptr, r.value);
      return r.result;
    }),

    // --- http_call (envoy-proxy-wasm.md §2 "http_call") ---
    proxy_http_call: safe(
      (
        up: number,
        us: number,
        hp: number,
        hs: number,
        bp: number,
        bs: number,
        tp: number,
        ts: number,
        timeout: number,
        tokenPtr: number,
      ) => {
        vm.restrict(false);
        const cluster = str(up, us);
        const headers = deserializePairs(mem().bytes(hp, hs));
        const body = mem().copy(bp, bs);
        const trailers = deserializePairs(mem().bytes(tp, ts));
        mem().u32(tokenPtr);
        const baseUrl = vm.activePlugin()?.clusters[cluster];
        if (baseUrl === undefined) return R.BadArgument;
        for (const required of [":path", ":method", ":authority"]) {
          if (!headers.some(([k]) => k === required)) return R.BadArgument;
        }
        if ((timeout | 0) < 0) return R.BadArgument;
        const token = vm.startHttpCall({ baseUrl, headers, body, trailers, timeoutMs: timeout | 0 });
        mem().setU32(tokenPtr, token);
        return R.Ok;
      },
    ),
    // No gRPC clusters exist in this host: Envoy answers an unknown cluster with BadArgument.
    proxy_grpc_call: safe(() => {
      vm.restrict(false);
      return R.BadArgument;
    }),
    proxy_grpc_stream: safe(() => {
      vm.restrict(false);
      return R.BadArgument;
    }),
    proxy_grpc_cancel: safe(() => R.NotFound),
    proxy_grpc_close: safe(() => R.NotFound),
    proxy_grpc_send: safe(() => R.NotFound),

    // --- foreign functions (envoy-proxy-wasm.md §2 "Route cache") ---
    proxy_call_foreign_function: safe(
      (np: number, ns: number, ap: number, as: number, rp: number, rs: number) => {
        vm.restrict(false);
        const name = str(np, ns);
        const args = mem().bytes(ap, as);
        switch (name) {
          case "clear_route_cache":
            stream()?.clearRouteCache();
            return R.Ok;
          case "compress":
            mem().copyOut(new Uint8Array(deflateSync(args)), rp, rs);
            return R.Ok;
          case "uncompress":
            try {
              mem().copyOut(new Uint8Array(inflateSync(args)), rp, rs);
            } catch (e) {
              if (e instanceof BadPointer) throw e;
              return R.SerializationFailure;
            }
            return R.Ok;
        }
        return KNOWN_FOREIGN.has(name) ? R.Unimplemented : R.NotFound;
      },
    ),

    // --- extras Envoy links ---
    pthread_equal: (a: number, b: number) => (a === b ? 1 : 0),
    emscripten_notify_memory_growth: () => {},
    envoy_resolve_dns: safe(() => R.Unimplemented),

    // --- ABI 0.1.0 only (verification rejects them for 0.2.x modules) ---
    proxy_get_configuration: safe((rp: number, rs: number) => {
      vm.restrict(false);
      mem().copyOut(vm.activePlugin()?.pluginConfiguration ?? new Uint8Array(0), rp, rs);
      return R.Ok;
    }),
    proxy_continue_request: safe(() => stream()?.continueStream(0) ?? R.NotFound),
    proxy_continue_response: safe(() => stream()?.continueStream(1) ?? R.NotFound),
    proxy_clear_route_cache: safe(() => {
      stream()?.clearRouteCache();
      return R.Ok;
    }),
  };
  return env;
}
