// Unit tests of the pure request modules: JSON scanner, prompt extraction, model rewrite.
import {
  ScanResult,
  SCAN_OK,
  SCAN_INVALID_JSON,
  SCAN_TOO_DEEP,
  SCAN_NOT_OBJECT,
  SCAN_MODEL_MISSING,
  SCAN_MODEL_NOT_STRING,
  SCAN_MODEL_DUPLICATE,
  SCAN_INCOMPLETE,
  SCAN_STREAM_NOT_BOOL,
  SCAN_EMPTY,
  STREAM_TRUE,
  STREAM_FALSE,
  STREAM_ABSENT,
  scanErrorMessage,
  scanErrorBody,
} from "../request/result";
import { scanPrefix, scanRequest, validateJson, KEY_SYSTEM } from "../request/json-scan";
import { closePrefix } from "../request/body-prefix";
import { ModelKeyWatch } from "../request/model-key-watch";
import {
  extractPrompt,
  extractModel,
  kindFromPath,
  KIND_AUTO,
  KIND_CHAT,
  KIND_COMPLETIONS,
  KIND_EMBEDDINGS,
  KIND_MESSAGES,
  KIND_RESPONSES,
} from "../request/prompt";
import { rewriteModel } from "../request/rewrite";
import { ByteBuffer } from "../request/bytes";

const r = new ScanResult();
const out = new ByteBuffer(16384, 64);

function scan(body: string): i32 {
  const b = String.UTF8.encode(body);
  scanRequest(changetype<usize>(b), b.byteLength, r);
  return r.error;
}

function valid(doc: string): bool {
  const b = String.UTF8.encode(doc);
  return validateJson(changetype<usize>(b), b.byteLength) == SCAN_OK;
}

function validBytes(bytes: u8[]): bool {
  const a = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) a[i] = bytes[i];
  return validateJson(a.dataStart, a.length) == SCAN_OK;
}

function model(body: string): string {
  const b = String.UTF8.encode(body);
  scanRequest(changetype<usize>(b), b.byteLength, r);
  extractModel(changetype<usize>(b), b.byteLength, r, out);
  return String.UTF8.decodeUnsafe(out.ptr, <usize>out.len);
}

function prompt(body: string, kind: i32): string {
  const b = String.UTF8.encode(body);
  scanRequest(changetype<usize>(b), b.byteLength, r);
  extractPrompt(changetype<usize>(b), b.byteLength, r, kind, out);
  return String.UTF8.decodeUnsafe(out.ptr, <usize>out.len);
}

function rewrite(body: string, name: string): string {
  const b = String.UTF8.encode(body);
  scanRequest(changetype<usize>(b), b.byteLength, r);
  const nb = rewriteModel(changetype<usize>(b), b.byteLength, r, name);
  return String.UTF8.decodeUnsafe(nb.dataStart, <usize>nb.length);
}

describe("json scan: value types", () => {
  it("accepts every JSON value type", () => {
    expect(
      valid('{"a":null,"b":true,"c":false,"d":0,"e":-1.5e+10,"f":"s","g":[],"h":{},"i":[1,[2,{"j":[]}]]}'),
    ).toBe(true);
    expect(valid("0")).toBe(true);
    expect(valid('"x"')).toBe(true);
    expect(valid("[]")).toBe(true);
    expect(valid("null")).toBe(true);
  });
  it("validates numbers strictly", () => {
    expect(valid("-0")).toBe(true);
    expect(valid("1E5")).toBe(true);
    expect(valid("123456789012345678901234567890e999")).toBe(true);
    expect(valid("01")).toBe(false);
    expect(valid("1.")).toBe(false);
    expect(valid(".5")).toBe(false);
    expect(valid("+1")).toBe(false);
    expect(valid("1e")).toBe(false);
    expect(valid("-")).toBe(false);
    expect(valid("NaN")).toBe(false);
  });
  it("validates literals", () => {
    expect(valid("tru")).toBe(false);
    expect(valid("nul")).toBe(false);
    expect(valid("falsey")).toBe(false);
    expect(valid("True")).toBe(false);
  });
  it("accepts only JSON whitespace", () => {
    expect(valid(' \t\r\n{ "a" : [ 1 , 2 ] } \n')).toBe(true);
    expect(valid("\u000b{}")).toBe(false);
    expect(valid("\u00a0{}")).toBe(false);
  });
  it("rejects structural errors and trailing garbage", () => {
    expect(valid('{"a":1,}')).toBe(false);
    expect(valid("[1,]")).toBe(false);
    expect(valid('{"a" 1}')).toBe(false);
    expect(valid("{a:1}")).toBe(false);
    expect(valid('{"a":1}}')).toBe(false);
    expect(valid('{"a":1} x')).toBe(false);
    expect(valid("[1 2]")).toBe(false);
    expect(valid("")).toBe(false);
  });
});

describe("json scan: strings", () => {
  it("accepts every escape, including surrogate pairs and lone surrogates", () => {
    expect(valid('"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00 \\ud800"')).toBe(true);
  });
  it("rejects bad escapes and raw control characters", () => {
    expect(valid('"\\x"')).toBe(false);
    expect(valid('"\\u12"')).toBe(false);
    expect(valid('"\\u12g4"')).toBe(false);
    expect(valid('"a\nb"')).toBe(false);
    expect(valid('"unterminated')).toBe(false);
    expect(valid('"\\')).toBe(false);
  });
  it("validates UTF-8", () => {
    expect(validBytes([0x22, 0xc3, 0xa9, 0x22])).toBe(true);
    expect(validBytes([0x22, 0xf0, 0x9f, 0x98, 0x80, 0x22])).toBe(true);
    expect(validBytes([0x22, 0xc0, 0x80, 0x22])).toBe(false); // overlong
    expect(validBytes([0x22, 0xed, 0xa0, 0x80, 0x22])).toBe(false); // encoded surrogate
    expect(validBytes([0x22, 0xf4, 0x90, 0x80, 0x80, 0x22])).toBe(false); // > U+10FFFF
    expect(validBytes([0x22, 0x80, 0x22])).toBe(false); // lone continuation
    expect(validBytes([0x22, 0xe2, 0x82, 0x22])).toBe(false); // truncated
    expect(validBytes([0xef, 0xbb, 0xbf, 0x7b, 0x7d])).toBe(false); // BOM is not whitespace
  });
});

describe("json scan: nesting", () => {
  it("accepts depth 64 and rejects depth 65", () => {
    expect(valid("[".repeat(64) + "]".repeat(64))).toBe(true);
    const b = String.UTF8.encode("[".repeat(65) + "]".repeat(65));
    expect(validateJson(changetype<usize>(b), b.byteLength)).toBe(SCAN_TOO_DEEP);
  });
  it("never recurses past the limit on huge nesting", () => {
    expect(valid("[".repeat(100000))).toBe(false);
  });
});

describe("json scan: request fields", () => {
  it("finds model and stream", () => {
    expect(scan('{"model":"llama","stream":true}')).toBe(SCAN_OK);
    expect(r.stream).toBe(STREAM_TRUE);
    expect(model('{"stream":false,"model":"llama"}')).toBe("llama");
    expect(r.stream).toBe(STREAM_FALSE);
    expect(scan('{"model":"m","stream":null}')).toBe(SCAN_OK);
    expect(r.stream).toBe(STREAM_ABSENT);
  });
  it("decodes escaped model names", () => {
    expect(model('{"model":"a\\u00e9\\"b"}')).toBe('aé"b');
    expect(r.model.escaped).toBe(true);
  });
  it("ignores nested model keys and recognises escaped top-level keys", () => {
    expect(model('{"x":{"model":"inner"},"model":"outer"}')).toBe("outer");
    expect(model('{"mod\\u0065l":"esc"}')).toBe("esc");
  });
  it("refuses a top-level model given twice (parsers disagree on which copy wins)", () => {
    expect(scan('{"model":"first","model":"second"}')).toBe(SCAN_MODEL_DUPLICATE);
    expect(scan('{"model":"first","model":1}')).toBe(SCAN_MODEL_DUPLICATE);
    expect(scan('{"model":1,"mod\\u0065l":"ok"}')).toBe(SCAN_MODEL_DUPLICATE);
    expect(scan('{"model":"a","x":{"model":"b"}}')).toBe(SCAN_OK);
  });
  it("reports missing or bad fields", () => {
    expect(scan('{"prompt":"x"}')).toBe(SCAN_MODEL_MISSING);
    expect(scan('{"model":""}')).toBe(SCAN_MODEL_MISSING);
    expect(scan('{"model":null}')).toBe(SCAN_MODEL_NOT_STRING);
    expect(scan('{"model":["m"]}')).toBe(SCAN_MODEL_NOT_STRING);
    expect(scan('{"model":"m","stream":"yes"}')).toBe(SCAN_STREAM_NOT_BOOL);
    expect(scan('["model"]')).toBe(SCAN_NOT_OBJECT);
    expect(scan("  ")).toBe(SCAN_EMPTY);
    expect(scan('{"model":"m"')).toBe(SCAN_INVALID_JSON);
    expect(r.errorPos).toBe(12);
  });
  it("has OpenAI-style messages", () => {
    expect(scanErrorMessage(SCAN_MODEL_MISSING, 0)).toBe('"model" is required');
    expect(scanErrorMessage(SCAN_INVALID_JSON, 7)).toBe("invalid JSON at byte 7");
    expect(scanErrorBody(SCAN_MODEL_MISSING, 0)).toBe(
      '{"error":{"message":"\\"model\\" is required","type":"invalid_request_error","param":"model","code":null}}',
    );
    expect(scanErrorBody(SCAN_INVALID_JSON, 3)).toBe(
      '{"error":{"message":"invalid JSON at byte 3","type":"invalid_request_error","param":null,"code":null}}',
    );
  });
});

describe("prompt extraction", () => {
  it("maps paths to kinds", () => {
    expect(kindFromPath("/v1/chat/completions")).toBe(KIND_CHAT);
    expect(kindFromPath("/v1/completions?x=1")).toBe(KIND_COMPLETIONS);
    expect(kindFromPath("/v1/embeddings")).toBe(KIND_EMBEDDINGS);
    expect(kindFromPath("/v1/responses")).toBe(KIND_RESPONSES);
    expect(kindFromPath("/v1/messages?beta=true")).toBe(KIND_MESSAGES);
    expect(kindFromPath("/v1/messages/count_tokens")).toBe(KIND_AUTO);
    expect(kindFromPath("/health")).toBe(KIND_AUTO);
  });
  it("completions: string, array of strings, token ids skipped", () => {
    expect(prompt('{"model":"m","prompt":"a\\nb"}', KIND_COMPLETIONS)).toBe("a\nb");
    expect(prompt('{"model":"m","prompt":["a","b",3]}', KIND_COMPLETIONS)).toBe("ab");
    expect(prompt('{"model":"m","prompt":[1,2,3]}', KIND_COMPLETIONS)).toBe("");
    expect(prompt('{"model":"m","prompt":[[1,2],[3]]}', KIND_COMPLETIONS)).toBe("");
  });
  it("chat: messages in order with the role template; content parts' text", () => {
    const body =
      '{"model":"m","messages":[{"role":"system","content":"S"},{"content":[{"type":"text","text":"A"},' +
      '{"type":"image_url","image_url":{"url":"u"}},{"text":"B"}],"role":"user"},{"role":"assistant","content":null}]}';
    expect(prompt(body, KIND_CHAT)).toBe(
      "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nAB<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n",
    );
    expect(prompt(body, KIND_AUTO)).toBe(prompt(body, KIND_CHAT));
  });
  it("chat: different roles give different text", () => {
    expect(prompt('{"model":"m","messages":[{"role":"user","content":"x"}]}', KIND_CHAT)).not.toBe(
      prompt('{"model":"m","messages":[{"role":"system","content":"x"}]}', KIND_CHAT),
    );
  });
  it("embeddings and responses", () => {
    expect(prompt('{"model":"m","input":["a","b"]}', KIND_EMBEDDINGS)).toBe("ab");
    expect(prompt('{"model":"m","input":"hi","instructions":"be brief"}', KIND_RESPONSES)).toBe("be briefhi");
    expect(prompt('{"model":"m","input":[{"role":"user","content":"q"},"t"]}', KIND_RESPONSES)).toBe(
      "<|im_start|>user\nq<|im_end|>\nt",
    );
  });
  it("messages: system (string or text blocks) as the leading system message, then the chat rendering", () => {
    const msgs =
      '"messages":[{"role":"user","content":[{"type":"text","text":"A"},{"type":"image"},{"type":"text","text":"B"}]},{"role":"assistant","content":"C"}]';
    const chat = "<|im_start|>user\nAB<|im_end|>\n<|im_start|>assistant\nC<|im_end|>\n";
    expect(prompt('{"model":"m","system":"S",' + msgs + "}", KIND_MESSAGES)).toBe(
      "<|im_start|>system\nS<|im_end|>\n" + chat,
    );
    // Key order does not matter: system is rendered first wherever it sits.
    expect(
      prompt(
        '{"model":"m",' + msgs + ',"system":[{"type":"text","text":"S1"},{"type":"text","text":"S2"}]}',
        KIND_MESSAGES,
      ),
    ).toBe("<|im_start|>system\nS1S2<|im_end|>\n" + chat);
    expect(prompt('{"model":"m",' + msgs + "}", KIND_MESSAGES)).toBe(chat);
    expect(prompt('{"model":"m","system":null,' + msgs + "}", KIND_MESSAGES)).toBe(chat);
    expect(prompt('{"model":"m","sys\u0074em":"E",' + msgs + "}", KIND_MESSAGES)).toBe(
      "<|im_start|>system\nE<|im_end|>\n" + chat,
    );
    // The same conversation as a chat completion hashes the same text.
    expect(prompt('{"model":"m","system":"S",' + msgs + "}", KIND_MESSAGES)).toBe(
      prompt(
        '{"model":"m","messages":[{"role":"system","content":"S"},' + msgs.substring(12) + "}",
        KIND_CHAT,
      ),
    );
    // `system` means nothing to the other kinds.
    expect(prompt('{"model":"m","system":"S",' + msgs + "}", KIND_CHAT)).toBe(chat);
  });
  it("records system like the other prompt fields, also in a head", () => {
    expect(scan('{"model":"m","system":"s"}')).toBe(SCAN_OK);
    expect(r.system.present).toBe(true);
    expect(scanHead('{"model":"m","system":"long sys')).toBe(SCAN_INCOMPLETE);
    expect(r.cut.topKey).toBe(KEY_SYSTEM);
  });
  it("decodes escapes and surrogates into UTF-8; lone surrogates become U+FFFD", () => {
    expect(prompt('{"model":"m","prompt":"\\uD83D\\uDE00\\u00e9\\ud800x"}', KIND_COMPLETIONS)).toBe(
      "😀é\uFFFDx",
    );
  });
  it("caps the prompt at the buffer limit", () => {
    const small = new ByteBuffer(10, 4);
    const b = String.UTF8.encode('{"model":"m","prompt":"0123456789abcdef"}');
    scanRequest(changetype<usize>(b), b.byteLength, r);
    expect(extractPrompt(changetype<usize>(b), b.byteLength, r, KIND_COMPLETIONS, small)).toBe(10);
    expect(small.truncated).toBe(true);
  });
});

describe("model rewrite", () => {
  it("replaces only the model value", () => {
    expect(rewrite('{ "model" : "old" , "prompt":"p"}', "new")).toBe('{ "model" : "new" , "prompt":"p"}');
  });
  it("escapes the new name and round-trips through the scanner", () => {
    const body = rewrite('{"model":"a\\u0041","x":1}', 'q"\\\n\u0001é😀');
    expect(body).toBe('{"model":"q\\"\\\\\\u000a\\u0001é😀","x":1}');
    expect(model(body)).toBe('q"\\\n\u0001é😀');
  });
});

/** Scans the head of `body` as a body that may continue; returns the scan error. */
function scanHead(body: string): i32 {
  const b = String.UTF8.encode(body);
  scanPrefix(changetype<usize>(b), b.byteLength, r);
  return r.error;
}

/** The closed document of the last scanHead over `body`, or "" when there is none. */
function closed(body: string): string {
  const b = String.UTF8.encode(body);
  const out = new ByteBuffer(1024, 64);
  if (!closePrefix(changetype<usize>(b), b.byteLength, r.cut, out)) return "";
  return String.UTF8.decodeUnsafe(out.ptr, <usize>out.len);
}

describe("body heads (a body that has not fully arrived)", () => {
  it("reports a cut document as incomplete, keeping the fields seen", () => {
    expect(scanHead('{"model":"m","messages":[{"role":"user","content":"hel')).toBe(SCAN_INCOMPLETE);
    expect(r.model.present).toBe(true);
    expect(r.cut.truncated).toBe(true);
    expect(scanHead('{"model":"m"}')).toBe(SCAN_OK);
  });
  it("refuses at once what the head already shows to be wrong", () => {
    expect(scanHead('{"model":"a","model":"b","messages":[')).toBe(SCAN_MODEL_DUPLICATE);
    expect(scanHead('{"model":1,"messages":[')).toBe(SCAN_MODEL_NOT_STRING);
    expect(scanHead('{"model":"a",]')).toBe(SCAN_INVALID_JSON);
  });
  it("closes a head cut inside a string value, or after the last whole value", () => {
    const head = '{"model":"m","messages":[{"role":"user","content":"hel';
    scanHead(head);
    expect(closed(head)).toBe('{"model":"m","messages":[{"role":"user","content":"hel"}]}');
    const inKey = '{"model":"m","messages":[{"role":"user","cont';
    scanHead(inKey);
    expect(closed(inKey)).toBe('{"model":"m","messages":[{"role":"user"}]}');
    const inEscape = '{"model":"m","prompt":"a\\u00';
    scanHead(inEscape);
    expect(closed(inEscape)).toBe('{"model":"m","prompt":"a"}');
  });
  it("watches the rest for a second top-level model, across chunk boundaries", () => {
    const head = '{"model":"m","prompt":"';
    scanHead(head);
    // The watcher starts at the last safe point (after "m") and reads on from there.
    const w = ModelKeyWatch.fromCut(r.cut);
    const rest = String.UTF8.encode(',"prompt":"x \\" \\\\","meta":{"model":"n"},"mo');
    w.feed(changetype<usize>(rest), rest.byteLength);
    expect(w.duplicate).toBe(false);
    const last = String.UTF8.encode('del":"b"}');
    w.feed(changetype<usize>(last), last.byteLength);
    expect(w.duplicate).toBe(true);
  });
});
