// Bounds-checked little-endian reader over [pos, end) of linear memory. Reads past the end return 0
// and latch `bad`, so a decoder can read a whole fixed-size record and check once.

export class Reader {
  bad: bool = false;
  constructor(
    public base: usize,
    public pos: u32,
    public end: u32,
  ) {}

  remaining(): u32 {
    return this.pos <= this.end ? this.end - this.pos : 0;
  }

  private take(n: u32): bool {
    if (this.bad || n > this.remaining()) {
      this.bad = true;
      this.pos = this.end;
      return false;
    }
    return true;
  }

  u8(): u32 {
    if (!this.take(1)) return 0;
    const v = <u32>load<u8>(this.base + this.pos);
    this.pos += 1;
    return v;
  }

  u16(): u32 {
    if (!this.take(2)) return 0;
    const v = <u32>load<u16>(this.base + this.pos);
    this.pos += 2;
    return v;
  }

  u32(): u32 {
    if (!this.take(4)) return 0;
    const v = load<u32>(this.base + this.pos);
    this.pos += 4;
    return v;
  }

  u64(): u64 {
    if (!this.take(8)) return 0;
    const v = load<u64>(this.base + this.pos);
    this.pos += 8;
    return v;
  }

  f64(): f64 {
    if (!this.take(8)) return 0;
    const v = load<f64>(this.base + this.pos);
    this.pos += 8;
    return v;
  }

  skip(n: u32): void {
    if (this.take(n)) this.pos += n;
  }
}
