// Array-backed double-ended queue: O(1) at both ends, O(n) removal in the middle (LoRA skips are rare).
export class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  at(i: number): T {
    return this.items[this.head + i] as T;
  }

  pushBack(x: T): void {
    this.items.push(x);
  }

  pushFront(x: T): void {
    if (this.head > 0) this.items[--this.head] = x;
    else this.items.unshift(x);
  }

  removeAt(i: number): T {
    if (i === 0) {
      const x = this.items[this.head] as T;
      this.items[this.head++] = undefined;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return x;
    }
    return this.items.splice(this.head + i, 1)[0] as T;
  }

  remove(x: T): boolean {
    const i = this.items.indexOf(x, this.head);
    if (i < 0) return false;
    this.removeAt(i - this.head);
    return true;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as T;
  }
}
