// Envoy's WASI subset (envoy-proxy-wasm.md §1 "Host functions": registered under both
// wasi_snapshot_preview1 and wasi_unstable). Return codes are WASI errno values.
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
  /** Throws the "restricted_callback" trap when the current phase forbids the call (e.g. inside malloc). */
  checkAllowedInMalloc(name: string): void;
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
  return {
    // fd 1 → info, fd 2 → error, trailing "\n" stripped; other fds → EBADF.
    fd_write: (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) =>
      guard(() => {
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
    fd_read: () => Errno.NOSYS,
    fd_seek: () => Errno.NOSYS,
    fd_close: () => Errno.NOSYS,
    fd_fdstat_get: (fd: number, buf: number) =>
      guard(() => {
        if (fd !== 1 && fd !== 2) return Errno.BADF;
        const m = h.mem();
        // fdstat: filetype u8 (2 = character device), flags u16, rights u64 ×2.
        m.write(buf, new Uint8Array(24));
        m.write(buf, Uint8Array.of(2));
        return Errno.SUCCESS;
      }),
    fd_fdstat_set_flags: () => Errno.NOSYS,
    fd_fdstat_set_rights: () => Errno.NOSYS,
    environ_get: (environ: number, buf: number) =>
      guard(() => {
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
        const m = h.mem();
        const pairs = envPairs();
        m.setU32(countPtr, pairs.length);
        m.setU32(
          sizePtr,
          pairs.reduce((s, e) => s + e.length + 1, 0),
        );
        return Errno.SUCCESS;
      }),
    args_get: () => Errno.SUCCESS,
    args_sizes_get: (countPtr: number, sizePtr: number) =>
      guard(() => {
        h.mem().setU32(countPtr, 0);
        h.mem().setU32(sizePtr, 0);
        return Errno.SUCCESS;
      }),
    // realtime (0) and monotonic (1) only; other ids → NOTSUP.
    clock_time_get: (id: number, _precision: bigint, timePtr: number) =>
      guard(() => {
        if (id === 0) h.mem().setU64(timePtr, h.clock.nowNs());
        else if (id === 1) h.mem().setU64(timePtr, process.hrtime.bigint());
        else return Errno.NOTSUP;
        return Errno.SUCCESS;
      }),
    clock_res_get: (id: number, resPtr: number) =>
      guard(() => {
        if (id !== 0 && id !== 1) return Errno.NOTSUP;
        h.mem().setU64(resPtr, 1n);
        return Errno.SUCCESS;
      }),
    // At most 64 KiB per call, otherwise EINVAL.
    random_get: (buf: number, len: number) =>
      guard(() => {
        h.checkAllowedInMalloc("random_get");
        if (len >>> 0 > 65536) return Errno.INVAL;
        randomFillSync(h.mem().bytes(buf, len));
        return Errno.SUCCESS;
      }),
    sched_yield: () => Errno.SUCCESS,
    poll_oneoff: (_in: number, _out: number, _n: number, neventsPtr: number) =>
      guard(() => {
        h.mem().setU32(neventsPtr, 0);
        return Errno.SUCCESS;
      }),
    // Envoy only logs; the guest continues (AssemblyScript then hits `unreachable`).
    proc_exit: (code: number) => {
      h.log(LogLevel.error, `proc_exit(${code}) called`);
    },
    path_open: () => Errno.NOENT,
    fd_prestat_get: () => Errno.BADF,
    fd_prestat_dir_name: () => Errno.NOSYS,
    path_filestat_get: () => Errno.NOSYS,
    fd_filestat_get: () => Errno.NOSYS,
  };
}
