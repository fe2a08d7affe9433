// Process-wide shared data and shared queues (envoy-proxy-wasm.md §2 "Shared data", "Shared queues").
import { WasmResult } from "./types.ts";

interface Entry {
  value: Uint8Array;
  cas: number;
}

/** Keyed by vm_id only; one global u32 CAS counter that starts at 1 and skips 0 on wrap. */
export class SharedData {
  private readonly byVm = new Map<string, Map<string, Entry>>();
  private casCounter = 0;

  private nextCas(): number {
    this.casCounter = (this.casCounter + 1) >>> 0;
    if (this.casCounter === 0) this.casCounter = 1;
    return this.casCounter;
  }

  get(vmId: string, key: string): { value: Uint8Array; cas: number } | undefined {
    return this.byVm.get(vmId)?.get(key);
  }

  /** Returns Ok or CasMismatch: cas ≠ 0 and ≠ current on an existing key fails; a new key ignores cas. */
  set(vmId: string, key: string, value: Uint8Array, cas = 0): number {
    let m = this.byVm.get(vmId);
    if (!m) this.byVm.set(vmId, (m = new Map()));
    const cur = m.get(key);
    if (cur && cas !== 0 && cas !== cur.cas) return WasmResult.CasMismatch;
    m.set(key, { value, cas: this.nextCas() });
    return WasmResult.Ok;
  }

  /** Host-side only (the ABI has no delete). */
  remove(vmId: string, key: string): boolean {
    return this.byVm.get(vmId)?.delete(key) ?? false;
  }

  /** Everything for a vm_id goes when the last VM with that vm_id goes away. */
  dropVm(vmId: string): void {
    this.byVm.delete(vmId);
  }

  keys(vmId: string): string[] {
    return [...(this.byVm.get(vmId)?.keys() ?? [])];
  }
}

export interface QueueOwner {
  /** Posts on_queue_ready(root, token) to the owner VM; must run asynchronously. */
  notify(token: number): void;
}

interface Queue {
  vmId: string;
  name: string;
  token: number;
  items: Uint8Array[];
  owner: QueueOwner;
}

export class SharedQueues {
  private readonly byName = new Map<string, Queue>();
  private readonly byToken = new Map<number, Queue>();
  private tokenCounter = 0;

  /** Re-registering keeps the data and re-points the owner to the caller. */
  register(vmId: string, name: string, owner: QueueOwner): number {
    const key = vmId + "\0" + name;
    const q = this.byName.get(key);
    if (q) {
      q.owner = owner;
      return q.token;
    }
    this.tokenCounter = (this.tokenCounter + 1) >>> 0 || 1;
    const nq: Queue = { vmId, name, token: this.tokenCounter, items: [], owner };
    this.byName.set(key, nq);
    this.byToken.set(nq.token, nq);
    return nq.token;
  }

  resolve(vmId: string, name: string): number | undefined {
    return this.byName.get(vmId + "\0" + name)?.token;
  }

  enqueue(token: number, data: Uint8Array): number {
    const q = this.byToken.get(token);
    if (!q) return WasmResult.NotFound;
    q.items.push(data);
    q.owner.notify(token);
    return WasmResult.Ok;
  }

  dequeue(token: number): { result: number; value?: Uint8Array } {
    const q = this.byToken.get(token);
    if (!q) return { result: WasmResult.NotFound };
    const v = q.items.shift();
    if (!v) return { result: WasmResult.Empty };
    return { result: WasmResult.Ok, value: v };
  }

  dropVm(vmId: string): void {
    for (const [k, q] of this.byName) {
      if (q.vmId === vmId) {
        this.byName.delete(k);
        this.byToken.delete(q.token);
      }
    }
  }
}
