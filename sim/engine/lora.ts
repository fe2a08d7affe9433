// LoRA adapter slots. `maxLoras` adapters may be active in one batch (vLLM --max-loras); a GPU
// slot load costs loraWarmLoadMs if the adapter is still in the CPU cache (--max-cpu-loras, LRU)
// and loraColdLoadMs if it must come from disk.
export class LoraManager {
  readonly maxLoras: number;
  private readonly maxCpuLoras: number;
  private readonly warmMs: number;
  private readonly coldMs: number;
  /** Registered adapter names (--lora-modules and /v1/load_lora_adapter). */
  readonly known = new Set<string>();
  /** Adapters in GPU slots, least recently used first. */
  private readonly gpu: string[] = [];
  /** Adapters in CPU memory, least recently used first. */
  private readonly cpu: string[] = [];

  constructor(maxLoras: number, maxCpuLoras: number, warmMs: number, coldMs: number) {
    this.maxLoras = maxLoras;
    this.maxCpuLoras = Math.max(maxCpuLoras, maxLoras);
    this.warmMs = warmMs;
    this.coldMs = coldMs;
  }

  register(name: string): boolean {
    if (this.known.has(name)) return false;
    this.known.add(name);
    return true;
  }

  unregister(name: string): boolean {
    if (!this.known.delete(name)) return false;
    drop(this.gpu, name);
    drop(this.cpu, name);
    return true;
  }

  /**
   * Make `name` resident for a step whose active adapters are `active`; returns the load time in ms
   * (0 if already in a GPU slot). Evicts the least recently used slot not in `active`.
   */
  activate(name: string, active: Set<string>): number {
    if (drop(this.gpu, name)) {
      this.gpu.push(name);
      return 0;
    }
    if (this.gpu.length >= this.maxLoras) {
      const victim = this.gpu.findIndex((a) => !active.has(a));
      this.gpu.splice(victim >= 0 ? victim : 0, 1);
    }
    this.gpu.push(name);
    const warm = drop(this.cpu, name);
    this.cpu.push(name);
    if (this.cpu.length > this.maxCpuLoras) this.cpu.shift();
    return warm ? this.warmMs : this.coldMs;
  }

  gpuResident(): readonly string[] {
    return this.gpu;
  }
}

function drop(list: string[], name: string): boolean {
  const i = list.indexOf(name);
  if (i < 0) return false;
  list.splice(i, 1);
  return true;
}
