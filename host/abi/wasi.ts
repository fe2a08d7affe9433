// Envoy's WASI subset, as proxy-wasm-cpp-host 65bb78f (the commit Envoy 1.35 pins) defines it:
// include/proxy-wasm/exports.h FOR_ALL_WASI_FUNCTIONS, implemented in src/exports.cc wasi_unstable_*,
// registered under both wasi_snapshot_preview1 and wasi_unstable. Return codes are WASI errno values.
// Start-up and malloc allow only some of them (src/wasm.cc WasmBase::startVm, wasm.h allocMemory).
import { randomFillSync } from "node:crypto";
import type { Clock } from "../clock.ts";
import { BadPointer, type GuestMemory, utf8Decoder, utf8Encoder } from "./memory.ts";
import { LogLevel } from "../types.ts";

export const Errno = {
  SUCCESS: 0,
  BADF: 8,
  INVAL: 28,
  NOENT: 44,
  NOSYS: 52,
  NOTSUP: 58,
  NOTCAPABLE: 76,
} as const;

export interface WasiHost {
  mem(): GuestMemory;
  clock: Clock;
  environment: Record<string, string>;
  log(level: number, message: string): void;
  /** Throws the "restricted_callback" trap when the current phase forbids the call. */
  restrict(allowedInStart: boolean, allowedInMalloc: boolean): void;
}

// Sentinel for "a bad pointer was given": WASI has no InvalidMemoryAccess, cpp-host answers EFAULT-like 21.
const EFAULT = 21;

function guard(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (e instanceof BadPointer) return EFAULT;
    throw e;
  }
}

export function buildWasi(h: WasiHost): Record<string, (...a: never[]) => number | void> {
  const envPairs = () => Object.entries(h.environment).map(([k, v]) => utf8Encoder.encode(`${k}=${v}`));
  // Allowed during _start (WasmBase::startVm's list), during malloc (allocMemory's list), or neither.
  const start = () => h.restrict(true, false);
  const never = () => h.restrict(false, false);
  return {
    // fd 1 → info, fd 2 → error, trailing "\n" stripped; other fds → EBADF.
    fd_write: (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) =>
      guard(() => {
        h.restrict(true, true);
        const m = h.mem();
        if (fd !== 1 && fd !== 2) return Errno.BADF;
        let text = "";
        let written = 0;
        for (let i = 0; i < iovsLen; i++) {
          const p = m.u32(iovs + i * 8);
          const l = m.u32(iovs + i * 8 + 4);
          text += utf8Decoder.decode(m.bytes(p, l));
          written += l;
        }
        m.setU32(nwrittenPtr, written);
        if (text.endsWith("\n")) text = text.slice(0, -1);
        h.log(fd === 1 ? LogLevel.info : LogLevel.error, text);
        return Errno.SUCCESS;
      }),
    fd_read: () => (never(), Errno.NOSYS),
    // Logged (at trace, Envoy's Context::error) and reported as done.
    fd_seek: () => {
      never();
      h.log(LogLevel.trace, "wasi_unstable fd_seek");
      return Errno.SUCCESS;
    },
    fd_close: () => {
      never();
      h.log(LogLevel.trace, "wasi_unstable fd_close");
      return Errno.SUCCESS;
    },
    fd_fdstat_get: (fd: number, buf: number) =>
      guard(() => {
        start();
        if (fd !== 1 && fd !== 2) return Errno.BADF;
        // Three u64: 0, fs_rights_base = FD_WRITE (64), 0.
        const out = new Uint8Array(24);
        out[8] = 64;
        h.mem().write(buf, out);
        return Errno.SUCCESS;
      }),
    fd_fdstat_set_flags: () => (start(), Errno.NOSYS),
    environ_get: (environ: number, buf: number) =>
      guard(() => {
        start();
        const m = h.mem();
        let off = buf;
        envPairs().forEach((e, i) => {
          m.setU32(environ + i * 4, off);
          m.write(off, e);
          m.write(off + e.length, Uint8Array.of(0));
          off += e.length + 1;
        });
        return Errno.SUCCESS;
      }),
    environ_sizes_get: (countPtr: number, sizePtr: number) =>
      guard(() => {
        start();
        const m = h.mem();
        const pairs = envPairs();
        m.setU32(countPtr, pairs.length);
        m.setU32(
          sizePtr,
          pairs.reduce((s, e) => s + e.length + 1, 0),
        );
        return Errno.SUCCESS;
      }),
    args_get: () => (start(), Errno.SUCCESS),
    args_sizes_get: (countPtr: number, sizePtr: number) =>
      guard(() => {
        start();
        h.mem().setU32(countPtr, 0);
        h.mem().setU32(sizePtr, 0);
        return Errno.SUCCESS;
      }),
    // realtime (0) and monotonic (1) only; other ids → NOTSUP.
    clock_time_get: (id: number, _precision: bigint, timePtr: number) =>
      guard(() => {
        h.restrict(true, true);
        if (id === 0) h.mem().setU64(timePtr, h.clock.nowNs());
        else if (id === 1) h.mem().setU64(timePtr, process.hrtime.bigint());
        else return Errno.NOTSUP;
        return Errno.SUCCESS;
      }),
    // At most 64 KiB per call, otherwise EINVAL.
    random_get: (buf: number, len: number) =>
      guard(() => {
        start();
        if (len >>> 0 > 65536) return Errno.INVAL;
        if (len >>> 0 === 0) return Errno.SUCCESS;
        randomFillSync(h.mem().bytes(buf, len));
        return Errno.SUCCESS;
      }),
    sched_yield: () => (never(), Errno.SUCCESS),
    poll_oneoff: () => (never(), Errno.NOSYS),
    // Envoy only logs (at trace); the guest continues (AssemblyScript then hits `unreachable`).
    proc_exit: () => {
      never();
      h.log(LogLevel.trace, "wasi_unstable proc_exit");
    },
    path_open: () => (never(), Errno.NOENT),
    fd_prestat_get: () => (start(), Errno.BADF),
    fd_prestat_dir_name: () => (start(), Errno.NOSYS),
  };
}
