// A scheduling config file that is watched: an edit takes effect without a restart. Watches the file's
// directory (editors save by writing a temporary file and renaming it over the original, and a mounted
// ConfigMap swaps a symlink, both of which a watch on the file itself would lose), debounces the events,
// and reloads only when the content hash changed. A periodic re-read covers filesystems without events.
import { watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, extname } from "node:path";
import { ConfigError, configHash, loadConfig } from "./load.ts";
import type { LoadedConfig } from "./load.ts";

export interface ConfigRejection {
  source: string;
  reason: string;
  message: string;
  /** Hash of the refused text ("" when it could not be read). */
  hash: string;
  atMs: number;
}

export interface FileSourceOptions {
  path: string;
  /** The SCHEDULER record's profile name; default: the file's base name without extension. */
  displayName?: string;
  /** Called after every load attempt whose text differs from the last one. */
  onChange?: (s: FileSource) => void;
  debounceMs?: number;
  /** Re-read period when no event arrives (ms, default 2000; 0 disables). */
  rescanMs?: number;
  now?: () => number;
}

export class FileSource {
  active: LoadedConfig | undefined;
  rejection: ConfigRejection | undefined;
  private lastHash: string | undefined;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private rescan: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  readonly displayName: string;

  constructor(private readonly opts: FileSourceOptions) {
    this.displayName = opts.displayName ?? basename(opts.path, extname(opts.path));
  }

  get path(): string {
    return this.opts.path;
  }

  /** Loads once and starts watching; the first load's outcome is in `active` / `rejection`. */
  async start(): Promise<void> {
    await this.reload();
    const file = basename(this.opts.path);
    try {
      this.watcher = watch(dirname(this.opts.path), (_event, name) => {
        // Some platforms omit the name; a sibling's event (an editor's swap file) is ignored.
        if (name === null || name === file || name.startsWith("..")) this.schedule();
      });
      this.watcher.on("error", () => this.watcher?.close());
    } catch {
      // No watch support: the periodic re-read below still picks edits up.
    }
    const period = this.opts.rescanMs ?? 2000;
    if (period > 0) {
      this.rescan = setInterval(() => void this.reload(), period);
      this.rescan.unref();
    }
  }

  stop(): void {
    this.watcher?.close();
    clearTimeout(this.debounce);
    clearInterval(this.rescan);
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload(), this.opts.debounceMs ?? 100);
  }

  /** One read at a time; a request during a read runs one more afterwards. */
  async reload(): Promise<void> {
    if (this.reading !== undefined) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.readOnce();
      } while (this.again);
    })();
    try {
      await this.reading;
    } finally {
      this.reading = undefined;
    }
  }

  private async readOnce(): Promise<void> {
    const now = this.opts.now ?? Date.now;
    let text: string;
    try {
      text = await readFile(this.opts.path, "utf8");
    } catch (err) {
      const message = `${this.opts.path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      if (this.rejection?.message === message) return;
      this.lastHash = undefined;
      this.rejection = { source: this.opts.path, reason: "not_found", message, hash: "", atMs: now() };
      this.opts.onChange?.(this);
      return;
    }
    const hash = configHash(text);
    if (hash === this.lastHash) return;
    this.lastHash = hash;
    try {
      this.active = loadConfig(text, { source: this.opts.path, displayName: this.displayName });
      this.rejection = undefined;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.rejection = {
        source: this.opts.path,
        reason: err.reason,
        message: err.message,
        hash,
        atMs: now(),
      };
    }
    this.opts.onChange?.(this);
  }
}
