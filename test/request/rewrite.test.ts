// Model rewrite and the 400 error messages, through the compiled request probe.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRequestProbe, SCAN } from "./request-probe.ts";
import { mulberry32 } from "../../sim/rng.ts";

const probe = loadRequestProbe();
const dec = new TextDecoder("utf-8", { fatal: true });

test("rewrite replaces only the model value and round-trips through JSON.parse", () => {
  const r = mulberry32(3);
  const names = ["llama-3-8b", 'quo"te', "back\\slash", "ctrl\u0001\n", "ünï 😀", "\ud800lone", ""];
  const bodies = [
    '{"model":"a","prompt":"hi"}',
    ' { "stream" : true , "model" : "old\\u0041" , "messages" : [ ] } ',
    '{"n":[1,{"model":"nested"}],"model":"top"}',
  ];
  for (let i = 0; i < 200; i++) {
    const body = bodies[i % bodies.length];
    const name = names[Math.floor(r() * names.length)] + String(i);
    const out = dec.decode(probe.rewrite(body, name));
    const want = JSON.parse(body);
    want.model = new TextDecoder().decode(new TextEncoder().encode(name));
    assert.deepEqual(JSON.parse(out), want, out);
    // Everything outside the model value is byte-identical.
    const start = probe.x.spanStart(0);
    assert.equal(out.slice(0, start), body.slice(0, start));
  }
});

test("a top-level model given twice is refused, however the second is spelled", () => {
  for (const body of ['{"model":"first","model":"second"}', '{"model":"a","x":1,"\\u006dodel":"b"}'])
    assert.equal(probe.scan(body).error, SCAN.modelDuplicate, body);
  assert.equal(probe.scan('{"model":"a","n":{"model":"b"}}').error, SCAN.ok);
});

test("error messages are suitable for an OpenAI-style 400", () => {
  const cases: [string, number, string][] = [
    ["", SCAN.empty, "request body is empty"],
    ['{"model":"m",}', SCAN.invalidJson, "invalid JSON at byte 13"],
    ['{"prompt":"x"}', SCAN.modelMissing, '"model" is required'],
    ['{"model":""}', SCAN.modelMissing, '"model" is required'],
    ['{"model":["m"]}', SCAN.modelNotString, '"model" must be a string'],
    ['{"model":"m","stream":"yes"}', SCAN.streamNotBool, '"stream" must be a boolean'],
    ["[]", SCAN.notObject, "request body must be a JSON object"],
    [
      '{"model":"m","x":' + "[".repeat(64) + "]".repeat(64) + "}",
      SCAN.tooDeep,
      "invalid JSON at byte 80: nesting deeper than 64",
    ],
  ];
  for (const [body, code, message] of cases) {
    const got = probe.scan(body);
    assert.equal(got.error, code, body);
    assert.equal(probe.errorMessage(got.error, got.errorPos), message, body);
  }
  // Depth 64 exactly is accepted.
  const ok = '{"model":"m","x":' + "[".repeat(63) + "]".repeat(63) + "}";
  assert.equal(probe.scan(ok).error, SCAN.ok);
});
