// Import/export verification with Envoy's error texts (envoy-proxy-wasm.md §1).
import { test } from "node:test";
import assert from "node:assert/strict";
import { verifyModule, EnvoyProcess, WasmLoadError } from "../../host/index.ts";
import { compileWat } from "./puppet.ts";

const BASE_EXPORTS = `(memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))`;

async function mod(imports: string, exports = BASE_EXPORTS): Promise<Uint8Array> {
  return compileWat(`(module ${imports} ${exports})`);
}

test("a module using only Envoy's imports verifies (env + both WASI module names)", async () => {
  const code = await mod(`
    (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
    (import "env" "proxy_grpc_call" (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_increment_metric" (func (param i32 i64) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
    (import "wasi_unstable" "proc_exit" (func (param i32)))`);
  const r = verifyModule(code);
  assert.equal(r.abi, "0.2.1");
  assert.deepEqual(r.problems, []);
});

test("missing import, ABI-0.1.0-only function, and gRPC signature mismatch use Envoy's texts", async () => {
  const code = await mod(`
    (import "env" "proxy_dictionary_get" (func (param i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_clear_route_cache" (func (result i32)))
    (import "env" "proxy_grpc_call" (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_grpc_stream" (func (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))`);
  assert.deepEqual(verifyModule(code).problems, [
    "Failed to load Wasm module due to a missing import: env.proxy_dictionary_get",
    "Failed to load Wasm module due to a missing import: env.proxy_clear_route_cache",
    "Failed to load Wasm module due to an import type mismatch: env.proxy_grpc_call, want: i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 -> i32, but host exports: i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 -> i32",
    "Failed to load Wasm module due to an import type mismatch: env.proxy_grpc_stream, want: i32 i32 i32 i32 i32 i32 i32 -> i32, but host exports: i32 i32 i32 i32 i32 i32 i32 i32 i32 -> i32",
    "Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.sock_accept",
  ]);
  await assert.rejects(new EnvoyProcess().loadPlugin(code, { vmId: "v" }), (e: unknown) => {
    assert.ok(e instanceof WasmLoadError);
    assert.match(e.message, /^Failed to load Wasm module due to a missing import: env\.proxy_dictionary_get/);
    return true;
  });
});

test("ABI 0.1.0 modules may import the 0.1.0-only functions but not continue_stream", async () => {
  const code = await mod(
    `(import "env" "proxy_clear_route_cache" (func (result i32)))
     (import "env" "proxy_continue_stream" (func (param i32) (result i32)))`,
    BASE_EXPORTS.replace("proxy_abi_version_0_2_1", "proxy_abi_version_0_1_0"),
  );
  const r = verifyModule(code);
  assert.equal(r.abi, "0.1.0");
  assert.deepEqual(r.problems, [
    "Failed to load Wasm module due to a missing import: env.proxy_continue_stream",
  ]);
});

test("missing ABI marker, memory and malloc are reported; proxy_on_memory_allocate replaces malloc", async () => {
  const none = await mod("", "");
  assert.deepEqual(verifyModule(none).problems, [
    "Missing or unknown Proxy-Wasm ABI version",
    "Wasm module is missing memory export.",
    "Wasm module is missing malloc function.",
  ]);
  const alt = await mod("", BASE_EXPORTS.replace('"malloc"', '"proxy_on_memory_allocate"'));
  assert.deepEqual(verifyModule(alt).problems, []);
});

test("a pre-compiled WebAssembly.Module is verified by import names", async () => {
  const code = await mod(`(import "env" "proxy_nope" (func))`);
  const r = verifyModule(await WebAssembly.compile(code as BufferSource));
  assert.deepEqual(r.problems, ["Failed to load Wasm module due to a missing import: env.proxy_nope"]);
});
