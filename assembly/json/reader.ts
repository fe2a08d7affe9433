// A small strict JSON reader (RFC 8259) producing a value tree. Pure and trap-free: malformed input,
// excessive nesting or trailing garbage yield null with an error message and offset, never an abort.

export enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  /** Array items, or object values (in document order). */
  items: JsonValue[] = [];
  /** Object keys, parallel to items. */
  keys: string[] = [];

  /** The value of an object member (the last one when a key repeats), or null. */
  get(key: string): JsonValue | null {
    if (this.kind != JsonKind.Object) return null;
    for (let i = this.keys.length - 1; i >= 0; i--) if (this.keys[i] == key) return this.items[i];
    return null;
  }
}

const MAX_DEPTH = 64;

export class JsonParser {
  pos: i32 = 0;
  error: string = "";

  constructor(public text: string) {}

  private fail(msg: string): JsonValue | null {
    if (this.error.length == 0) this.error = msg + " at offset " + this.pos.toString();
    return null;
  }

  private peek(): i32 {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  private ws(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  /** The whole document; null on any error (see `error`). */
  parse(): JsonValue | null {
    const v = this.value(0);
    if (v == null) return null;
    this.ws();
    if (this.pos != this.text.length) return this.fail("unexpected trailing characters");
    return v;
  }

  private literal(word: string): bool {
    if (this.text.length - this.pos < word.length) return false;
    if (this.text.substr(this.pos, word.length) != word) return false;
    this.pos += word.length;
    return true;
  }

  private value(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail("nesting too deep");
    this.ws();
    const c = this.peek();
    const v = new JsonValue();
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      if (s == null) return null;
      v.kind = JsonKind.String;
      v.str = s;
      return v;
    }
    if (c == 0x74 && this.literal("true")) {
      v.kind = JsonKind.Bool;
      v.bool = true;
      return v;
    }
    if (c == 0x66 && this.literal("false")) {
      v.kind = JsonKind.Bool;
      return v;
    }
    if (c == 0x6e && this.literal("null")) return v;
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    return this.fail(c < 0 ? "unexpected end of input" : "unexpected character");
  }

  private digits(): i32 {
    const start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c < 0x30 || c > 0x39) break;
      this.pos++;
    }
    return this.pos - start;
  }

  private number(): JsonValue | null {
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) this.pos++;
    else if (this.digits() == 0) return this.fail("bad number");
    if (this.peek() == 0x2e) {
      this.pos++;
      if (this.digits() == 0) return this.fail("bad number");
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const s = this.peek();
      if (s == 0x2b || s == 0x2d) this.pos++;
      if (this.digits() == 0) return this.fail("bad number");
    }
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = parseFloat(this.text.substring(start, this.pos));
    return v;
  }

  private hex4(): i32 {
    if (this.text.length - this.pos < 4) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.text.charCodeAt(this.pos + i);
      let d: i32;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else return -1;
      v = (v << 4) | d;
    }
    this.pos += 4;
    return v;
  }

  private string(): string | null {
    this.pos++; // opening quote
    let out = "";
    let from = this.pos;
    while (true) {
      if (this.pos >= this.text.length) {
        this.fail("unterminated string");
        return null;
      }
      const c = this.text.charCodeAt(this.pos);
      if (c == 0x22) break;
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      out += this.text.substring(from, this.pos);
      this.pos++;
      const e = this.peek();
      this.pos++;
      if (e == 0x22) out += '"';
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        const u = this.hex4();
        if (u < 0) {
          this.fail("bad \\u escape");
          return null;
        }
        out += String.fromCharCode(u);
      } else {
        this.pos--;
        this.fail("bad escape");
        return null;
      }
      from = this.pos;
    }
    out += this.text.substring(from, this.pos);
    this.pos++; // closing quote
    return out;
  }

  private array(depth: i32): JsonValue | null {
    this.pos++;
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    this.ws();
    if (this.peek() == 0x5d) {
      this.pos++;
      return v;
    }
    while (true) {
      const item = this.value(depth + 1);
      if (item == null) return null;
      v.items.push(item);
      this.ws();
      const c = this.peek();
      this.pos++;
      if (c == 0x5d) return v;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("expected , or ]");
      }
    }
  }

  private object(depth: i32): JsonValue | null {
    this.pos++;
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    this.ws();
    if (this.peek() == 0x7d) {
      this.pos++;
      return v;
    }
    while (true) {
      this.ws();
      if (this.peek() != 0x22) return this.fail("expected a member name");
      const key = this.string();
      if (key == null) return null;
      this.ws();
      if (this.peek() != 0x3a) return this.fail("expected :");
      this.pos++;
      const item = this.value(depth + 1);
      if (item == null) return null;
      v.keys.push(key);
      v.items.push(item);
      this.ws();
      const c = this.peek();
      this.pos++;
      if (c == 0x7d) return v;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("expected , or }");
      }
    }
  }
}

/** Parses a JSON document; on failure returns null and sets `lastJsonError`. */
export let lastJsonError: string = "";
export function parseJson(text: string): JsonValue | null {
  const p = new JsonParser(text);
  const v = p.parse();
  lastJsonError = p.error;
  return v;
}
