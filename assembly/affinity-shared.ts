// The affinity directory in proxy-wasm shared data, which every worker VM with the same vm_id sees
// (envoy-proxy-wasm.md §2 "Shared data": one map per vm_id across workers, one mutex, each get copied into
// the VM). The ABI has no delete or eviction, so the directory is a fixed 4096 buckets keyed by the
// affinity key's low bits (64 KB at most); a bucket holds the full key and the endpoint's host hash
// (16 bytes), so a collision costs a lookup miss, never a wrong pod. Plain writes (cas 0): the last
// placement wins. One get per long-prompt request, and a set only when a group is new or moves.

import { AffinityDirectory } from "./scheduling/affinity-directory.ts";
import { getSharedDataAt, setSharedDataAt } from "./abi/host.ts";

const BUCKETS: i32 = 4096;

export class SharedAffinityDirectory extends AffinityDirectory {
  /** `prefix`: the pool's shared-data key prefix, so pools sharing a vm_id keep separate directories. */
  constructor(private readonly prefix: string) {
    super();
  }
  private readonly keys: StaticArray<ArrayBuffer | null> = new StaticArray<ArrayBuffer | null>(BUCKETS);
  private readonly value: ArrayBuffer = new ArrayBuffer(16);

  private bucketKey(key: u64): ArrayBuffer {
    const b = <i32>(key & (<u64>(BUCKETS - 1)));
    const cached = unchecked(this.keys[b]);
    if (cached != null) return cached;
    const k = String.UTF8.encode(this.prefix + "affinity." + b.toString());
    unchecked((this.keys[b] = k));
    return k;
  }

  lookup(key: u64): u64 {
    const v = getSharedDataAt(this.bucketKey(key));
    if (v == null || v.data.byteLength != 16) return 0;
    const p = changetype<usize>(v.data);
    return load<u64>(p) == key ? load<u64>(p, 8) : 0;
  }

  record(key: u64, host: u64): void {
    const p = changetype<usize>(this.value);
    store<u64>(p, key);
    store<u64>(p, host, 8);
    setSharedDataAt(this.bucketKey(key), this.value);
  }
}
