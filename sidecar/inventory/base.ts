// What both inventory modes share: the record store, `change` forwarding and the Inventory surface.
import { EventEmitter } from "node:events";
import { RecordStore } from "./store.ts";
import { silentLogger } from "./types.ts";
import type { Inventory, InventoryOptions, Logger, PoolInventory } from "./types.ts";

export abstract class StoreBackedInventory extends EventEmitter implements Inventory {
  protected readonly store: RecordStore;
  protected readonly log: Logger;
  protected isSynced = false;

  constructor(opts: InventoryOptions) {
    super();
    this.log = opts.logger ?? silentLogger;
    this.store = new RecordStore(opts);
    this.store.on("change", () => this.emit("change"));
  }

  get synced(): boolean {
    return this.isSynced;
  }

  pools(): PoolInventory[] {
    return this.store.pools();
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;

  protected markSynced(): void {
    if (this.isSynced) return;
    this.isSynced = true;
    this.store.flush();
    this.emit("synced");
  }
}
