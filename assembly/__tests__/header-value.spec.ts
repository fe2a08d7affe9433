// Header values built from client input: control characters are refused, other non-ASCII is encoded.
import { hasControlCharacters, informationalHeaderValue } from "../request/header-value";

describe("model names in headers", () => {
  it("finds C0 controls and DEL anywhere", () => {
    expect<bool>(hasControlCharacters("llama")).toBe(false);
    expect<bool>(hasControlCharacters("a\u0000b")).toBe(true);
    expect<bool>(hasControlCharacters("a\r\nX-Evil: 1")).toBe(true);
    expect<bool>(hasControlCharacters("tab\there")).toBe(true);
    expect<bool>(hasControlCharacters("del\u007f")).toBe(true);
    expect<bool>(hasControlCharacters("é模🚀")).toBe(false);
  });
  it("keeps printable ASCII as it is", () => {
    expect<string>(informationalHeaderValue("meta-llama/Llama-3.1-8B:v1 %x")).toBe(
      "meta-llama/Llama-3.1-8B:v1 %x",
    );
  });
  it("encodes anything else as an RFC 8187 ext-value of its UTF-8 bytes", () => {
    expect<string>(informationalHeaderValue("模")).toBe("UTF-8''%E6%A8%A1");
    expect<string>(informationalHeaderValue("é")).toBe("UTF-8''%C3%A9");
    expect<string>(informationalHeaderValue("a b🚀")).toBe("UTF-8''a%20b%F0%9F%9A%80");
    // A lone surrogate still yields printable ASCII (whatever bytes the encoder makes of it).
    const lone = informationalHeaderValue(String.fromCharCode(0xd800));
    for (let i = 0; i < lone.length; i++) {
      const c = lone.charCodeAt(i);
      expect<bool>(c >= 0x21 && c <= 0x7e).toBe(true);
    }
  });
});
