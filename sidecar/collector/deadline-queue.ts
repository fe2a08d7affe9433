// A first-in-first-out queue of scrape deadlines stored in a ring of arrays, so queueing one is no
// allocation. Each deadline stays queued for the whole scrape timeout (1 s by default): at 20,000 scrapes
// a second an object per deadline is 20,000 live objects that outlive young-generation collections and
// get copied into the old generation, which then grows, faults in fresh pages and needs full collections.

export class DeadlineQueue<T> {
  private items: (T | undefined)[];
  private times: Float64Array;
  private tags: Float64Array;
  private head = 0;
  private count = 0;

  constructor(capacity = 1024) {
    let c = 1;
    while (c < capacity) c *= 2;
    this.items = new Array<T | undefined>(c).fill(undefined);
    this.times = new Float64Array(c);
    this.tags = new Float64Array(c);
  }

  get length(): number {
    return this.count;
  }

  /** Queues `item`, due at `at`; `tag` tells a later check which use of the item this deadline was for. */
  push(item: T, at: number, tag: number): void {
    if (this.count === this.items.length) this.grow();
    const i = (this.head + this.count) & (this.items.length - 1);
    this.items[i] = item;
    this.times[i] = at;
    this.tags[i] = tag;
    this.count++;
  }

  /** The oldest deadline's item, time and tag; only while length > 0. */
  firstItem(): T {
    return this.items[this.head]!;
  }
  firstAt(): number {
    return this.times[this.head]!;
  }
  firstTag(): number {
    return this.tags[this.head]!;
  }

  /** Drops the oldest deadline. */
  shift(): void {
    if (this.count === 0) return;
    this.items[this.head] = undefined; // let a removed endpoint's state go
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
  }

  clear(): void {
    while (this.count > 0) this.shift();
    this.head = 0;
  }

  private grow(): void {
    const n = this.items.length;
    const items = new Array<T | undefined>(2 * n).fill(undefined);
    const times = new Float64Array(2 * n);
    const tags = new Float64Array(2 * n);
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) & (n - 1);
      items[k] = this.items[i];
      times[k] = this.times[i]!;
      tags[k] = this.tags[i]!;
    }
    this.items = items;
    this.times = times;
    this.tags = tags;
    this.head = 0;
  }
}
