// File mode: the same resources read from YAML (or JSON) manifests in one directory, for running without a
// cluster. Pod objects with status.podIP and a Ready condition provide the endpoints. Changes are picked
// up through fs.watch (debounced) with a periodic rescan as fallback for filesystems where watch is unreliable.
import { watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { readFile, readdir, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { StoreBackedInventory } from "./base.ts";
import type { RawObject } from "./resources.ts";
import type { InventoryOptions } from "./types.ts";

export interface FileInventoryOptions extends InventoryOptions {
  manifestsDir: string;
  /** Wait this long after the last fs event before rescanning (ms, default 100). */
  debounceMs?: number;
  /** A changed file modified less than this long ago is read later, as it may be mid-write (ms, default 100). */
  settleMs?: number;
  /** Full rescan period (ms, default 2000; 0 disables). */
  rescanMs?: number;
}

interface FileState {
  text: string;
  objects: RawObject[];
}

const MANIFEST_EXTENSIONS = new Set([".yaml", ".yml", ".json"]);

/** Parses a multi-document manifest; `kind: List` documents are flattened. Throws on any syntax error. */
export function parseManifests(text: string, file: string): RawObject[] {
  const out: RawObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== "object" || Array.isArray(value))
      throw new Error(`${file}: a document is not an object`);
    const obj = value as RawObject & { items?: unknown };
    if (typeof obj.kind === "string" && obj.kind.endsWith("List") && Array.isArray(obj.items))
      out.push(...(obj.items as RawObject[]));
    else out.push(obj);
  }
  return out;
}

export class FileInventory extends StoreBackedInventory {
  private readonly files = new Map<string, FileState>();
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private rescan: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanAgain = false;
  private running = false;

  constructor(private readonly options: FileInventoryOptions) {
    super(options);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.scan();
    if (!this.running) return;
    try {
      this.watcher = watch(this.options.manifestsDir, () => this.scheduleScan());
      this.watcher.on("error", (err) =>
        this.log.warn({ err }, "manifest directory watch failed; relying on rescans"),
      );
    } catch (err) {
      this.log.warn(
        { err, dir: this.options.manifestsDir },
        "cannot watch manifest directory; relying on rescans",
      );
    }
    const period = this.options.rescanMs ?? 2000;
    if (period > 0) this.rescan = setInterval(() => void this.scan(), period);
    this.markSynced();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.debounce);
    clearInterval(this.rescan);
    await this.scanning;
    this.store.dispose();
  }

  private scheduleScan(delayMs = this.options.debounceMs ?? 100): void {
    if (!this.running) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.scan(), delayMs);
  }

  /** One scan at a time; a request during a scan runs one more afterwards. */
  private async scan(): Promise<void> {
    if (this.scanning !== undefined) {
      this.rescanAgain = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.rescanAgain = false;
        await this.scanOnce();
      } while (this.rescanAgain && this.running);
    })();
    try {
      await this.scanning;
    } finally {
      this.scanning = undefined;
    }
  }

  private async scanOnce(): Promise<void> {
    const dir = this.options.manifestsDir;
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => MANIFEST_EXTENSIONS.has(extname(n))).sort();
    } catch (err) {
      // Keep everything we had: a directory that vanished for a moment must not empty the inventory.
      this.log.error({ err, dir }, "cannot read manifest directory; keeping the last good inventory");
      return;
    }
    const present = new Set(names);
    for (const name of [...this.files.keys()]) if (!present.has(name)) this.files.delete(name);
    for (const name of names) {
      let text: string;
      let mtimeMs: number;
      try {
        mtimeMs = (await stat(join(dir, name))).mtimeMs;
        text = await readFile(join(dir, name), "utf8");
      } catch {
        continue; // removed between readdir and read; the next scan settles it
      }
      const prev = this.files.get(name);
      if (prev?.text === text) continue;
      // Editors and `cp` write in place: a file modified moments ago may be half-written (even empty),
      // and a valid prefix would silently drop objects. Let it settle and look again.
      const settleMs = this.options.settleMs ?? 100;
      if (this.synced && Date.now() - mtimeMs < settleMs) {
        this.scheduleScan(settleMs);
        continue;
      }
      try {
        this.files.set(name, { text, objects: parseManifests(text, name) });
      } catch (err) {
        this.log.warn(
          { file: name, err: (err as Error).message },
          `cannot parse ${name}; keeping its last good objects (${prev?.objects.length ?? 0})`,
        );
        this.options.onInvalid?.({
          kind: "File",
          namespace: "",
          name,
          field: "",
          reason: "parse_error",
          message: (err as Error).message,
        });
        // Remember the bad text so it is reported once, but keep the old objects.
        this.files.set(name, { text, objects: prev?.objects ?? [] });
      }
    }
    if (!this.running) return;
    this.store.replaceSource(
      "files",
      [...this.files.values()].flatMap((f) => f.objects),
    );
  }
}
