// Unit tests of the plugin configuration parser and the JSON reader it is built on.
import {
  DESTINATIONS_ORIGINAL_DST,
  DESTINATIONS_OVERRIDE_HOST,
  parseConfig,
  STALE_FAIL,
  STALE_ROUTE,
  STRICT_FROM_POOL,
  tokensFromEnv,
} from "../config";
import { parseJson, JsonKind } from "../json/reader";

const BASE = '"pool":{"namespace":"ns","name":"p"},"controlToken":"t"';

describe("json reader", () => {
  it("parses nested documents", () => {
    const v = parseJson(' {"a": [1, -2.5e1, true, null, "x\\u00e9\\n"], "b": {"c": false}} ')!;
    expect<JsonKind>(v.kind).toBe(JsonKind.Object);
    const a = v.get("a")!;
    expect<i32>(a.items.length).toBe(5);
    expect<f64>(a.items[1].num).toBe(-25);
    expect<bool>(a.items[2].bool).toBe(true);
    expect<JsonKind>(a.items[3].kind).toBe(JsonKind.Null);
    expect<string>(a.items[4].str).toBe("xé\n");
    expect<bool>(v.get("b")!.get("c")!.bool).toBe(false);
    expect<bool>(v.get("missing") == null).toBe(true);
  });
  it("rejects malformed JSON without trapping", () => {
    const bad = [
      "",
      "{",
      '{"a":}',
      "[1,]",
      "01",
      "1.",
      '"abc',
      '"\\x"',
      "tru",
      "{} x",
      '{"a" 1}',
      "-",
      '"\u0001"',
    ];
    for (let i = 0; i < bad.length; i++) expect<bool>(parseJson(bad[i]) == null).toBe(true);
    let deep = "";
    for (let i = 0; i < 100; i++) deep += "[";
    expect<bool>(parseJson(deep) == null).toBe(true);
  });
});

describe("plugin config", () => {
  it("applies defaults", () => {
    const c = parseConfig("{" + BASE + "}").config!;
    expect<string>(c.poolNamespace).toBe("ns");
    expect<string>(c.controlPath).toBe("/epp/v1/snapshot");
    expect<bool>(c.failOpen).toBe(false);
    expect<u64>(c.staleAfterMs).toBe(5000);
    expect<u32>(c.controlMaxBytes).toBe(4 << 20);
    expect<bool>(c.hasRandomSeed).toBe(false);
    expect<string>(c.keyPrefix()).toBe("epp.v1/ns/p/");
    expect<i32>(c.staleMode).toBe(STALE_ROUTE);
    expect<bool>(c.debugHeaders).toBe(false);
    expect<string>(c.healthPath).toBe("");
  });
  it("reads every field", () => {
    const c = parseConfig(
      "{" +
        BASE +
        ',"controlPath":"/x","failureMode":"FailOpen","staleAfterMs":0,"controlMaxBytes":1024,"randomSeed":42}',
    ).config!;
    expect<string>(c.controlPath).toBe("/x");
    expect<bool>(c.failOpen).toBe(true);
    expect<u64>(c.staleAfterMs).toBe(0);
    expect<u32>(c.controlMaxBytes).toBe(1024);
    expect<u64>(c.randomSeed).toBe(42);
  });
  it("names the offending field", () => {
    expect<bool>(parseConfig('{"controlToken":"t"}').error.includes("pool")).toBe(true);
    // Without a token the plugin has no control path (a data listener); the config is still valid.
    const dataOnly = parseConfig('{"pool":{"namespace":"ns","name":"p"}}').config!;
    expect<bool>(dataOnly.controlEnabled()).toBe(false);
    expect<bool>(parseConfig("{" + BASE + "}").config!.controlEnabled()).toBe(true);
    expect<bool>(
      parseConfig('{"pool":{"namespace":"ns","name":"p"},"controlToken":""}').error.includes("controlToken"),
    ).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"failureMode":"Maybe"}').error.includes("failureMode")).toBe(
      true,
    );
    expect<bool>(parseConfig("{" + BASE + ',"staleAfterMs":1.5}').error.includes("staleAfterMs")).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"randomSeed":"x"}').error.includes("randomSeed")).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"controlPath":"nope"}').error.includes("controlPath")).toBe(true);
    expect<bool>(parseConfig("[1]").config == null).toBe(true);
    expect<bool>(parseConfig("{oops").error.includes("JSON")).toBe(true);
  });
  it("accepts one control token, or two during a rotation", () => {
    const ns = '"pool":{"namespace":"ns","name":"p"}';
    expect<i32>(parseConfig("{" + BASE + "}").config!.controlTokens.length).toBe(1);
    const two = parseConfig("{" + ns + ',"controlToken":["old","new"]}').config!;
    expect<string>(two.controlTokens[0]).toBe("old");
    expect<string>(two.controlTokens[1]).toBe("new");
    expect<bool>(parseConfig("{" + ns + ',"controlToken":["a","b","c"]}').config == null).toBe(true);
    expect<bool>(parseConfig("{" + ns + ',"controlToken":[]}').error.includes("controlToken")).toBe(true);
    expect<bool>(parseConfig("{" + ns + ',"controlToken":["a",""]}').config == null).toBe(true);
    const fromEnv: string[] = [];
    expect<string>(tokensFromEnv("old, new", fromEnv)).toBe("");
    expect<string>(fromEnv[1]).toBe("new");
    expect<bool>(tokensFromEnv("a,b,c", []).length > 0).toBe(true);
    expect<bool>(tokensFromEnv("", []).length > 0).toBe(true);
  });
  it("gives ORIGINAL_DST one destination and override_host a list", () => {
    const oh = parseConfig("{" + BASE + ',"destinationMode":"override_host"}').config!;
    expect<i32>(oh.destinationMode).toBe(DESTINATIONS_OVERRIDE_HOST);
    expect<i32>(oh.maxFallbacks).toBe(3);
    const oh1 = parseConfig("{" + BASE + ',"destinationMode":"override_host","maxFallbacks":1}').config!;
    expect<i32>(oh1.maxFallbacks).toBe(1);
    const od = parseConfig("{" + BASE + ',"destinationMode":"original_dst","maxFallbacks":0}').config!;
    expect<i32>(od.destinationMode).toBe(DESTINATIONS_ORIGINAL_DST);
    // A list can never route through an ORIGINAL_DST cluster: refused, naming the field.
    const bad = parseConfig("{" + BASE + ',"destinationMode":"original_dst","maxFallbacks":2}');
    expect<bool>(bad.config == null).toBe(true);
    expect<bool>(bad.error.includes("maxFallbacks")).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"maxFallbacks":1}').error.includes("original_dst")).toBe(true);
    expect<bool>(
      parseConfig("{" + BASE + ',"destinationMode":"list"}').error.includes("destinationMode"),
    ).toBe(true);
  });
  it("reads the data-path fields and their defaults", () => {
    const d = parseConfig("{" + BASE + "}").config!;
    expect<u32>(d.maxBodyBytes).toBe(4 << 20);
    expect<i32>(d.destinationMode).toBe(DESTINATIONS_ORIGINAL_DST);
    expect<i32>(d.maxFallbacks).toBe(0);
    expect<bool>(d.conformance).toBe(false);
    expect<i32>(d.strictModels).toBe(STRICT_FROM_POOL);
    const c = parseConfig(
      "{" + BASE + ',"maxBodyBytes":1000,"maxFallbacks":0,"conformance":true,"strictModels":false}',
    ).config!;
    expect<u32>(c.maxBodyBytes).toBe(1000);
    expect<i32>(c.maxFallbacks).toBe(0);
    expect<bool>(c.conformance).toBe(true);
    expect<i32>(c.strictModels).toBe(0);
    expect<i32>(parseConfig("{" + BASE + ',"strictModels":true}').config!.strictModels).toBe(1);
    expect<i32>(parseConfig("{" + BASE + ',"strictModels":null}').config!.strictModels).toBe(
      STRICT_FROM_POOL,
    );
    expect<bool>(parseConfig("{" + BASE + ',"maxBodyBytes":0}').error.includes("maxBodyBytes")).toBe(true);
    const list = '"destinationMode":"override_host"';
    expect<bool>(
      parseConfig("{" + BASE + "," + list + ',"maxFallbacks":65}').error.includes("maxFallbacks"),
    ).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"conformance":1}').error.includes("conformance")).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"strictModels":"yes"}').error.includes("strictModels")).toBe(
      true,
    );
  });
});

describe("stale mode, debug headers, health path", () => {
  it("reads staleMode route / fail", () => {
    expect<i32>(parseConfig("{" + BASE + ',"staleMode":"route"}').config!.staleMode).toBe(STALE_ROUTE);
    expect<i32>(parseConfig("{" + BASE + ',"staleMode":"fail"}').config!.staleMode).toBe(STALE_FAIL);
  });
  it("refuses any other staleMode", () => {
    expect<bool>(parseConfig("{" + BASE + ',"staleMode":"Route"}').error.includes("staleMode")).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"staleMode":1}').error.includes("staleMode")).toBe(true);
  });
  it("reads debugHeaders as a boolean only", () => {
    expect<bool>(parseConfig("{" + BASE + ',"debugHeaders":true}').config!.debugHeaders).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"debugHeaders":"yes"}').error.includes("debugHeaders")).toBe(
      true,
    );
  });
  it("reads healthPath; null is off", () => {
    expect<string>(parseConfig("{" + BASE + ',"healthPath":"/epp/healthz"}').config!.healthPath).toBe(
      "/epp/healthz",
    );
    expect<string>(parseConfig("{" + BASE + ',"healthPath":null}').config!.healthPath).toBe("");
  });
  it("refuses a healthPath that is not a plain path or is the control path", () => {
    expect<bool>(parseConfig("{" + BASE + ',"healthPath":"healthz"}').error.includes("healthPath")).toBe(
      true,
    );
    expect<bool>(parseConfig("{" + BASE + ',"healthPath":"/h?x=1"}').error.includes("healthPath")).toBe(true);
    expect<bool>(parseConfig("{" + BASE + ',"healthPath":""}').error.includes("healthPath")).toBe(true);
    expect<bool>(
      parseConfig("{" + BASE + ',"healthPath":"/epp/v1/snapshot"}').error.includes("controlPath"),
    ).toBe(true);
  });
});

describe("pull config", () => {
  const POOL = '"pool":{"namespace":"ns","name":"p"}';

  it("is off by default", () => {
    const c = parseConfig("{" + POOL + "}").config!;
    expect<bool>(c.pullEnabled()).toBe(false);
  });

  it("defaults the path to the sidecar's /snapshot route for the pool, the authority to the cluster", () => {
    const c = parseConfig("{" + POOL + ',"pull":{"cluster":"epp-sidecar"}}').config!;
    expect<bool>(c.pullEnabled()).toBe(true);
    expect<string>(c.pullCluster).toBe("epp-sidecar");
    expect<string>(c.pullPath).toBe("/snapshot?pool=ns/p");
    expect<string>(c.pullAuthority).toBe("epp-sidecar");
    expect<u32>(c.pullIntervalMs).toBe(100);
    expect<u32>(c.pullTimeoutMs).toBe(1000);
  });

  it("reads every field", () => {
    const c = parseConfig(
      "{" +
        POOL +
        ',"pull":{"cluster":"sc","path":"/snapshot?pool=a/b","authority":"sidecar.local:9090","intervalMs":250,"timeoutMs":50}}',
    ).config!;
    expect<string>(c.pullPath).toBe("/snapshot?pool=a/b");
    expect<string>(c.pullAuthority).toBe("sidecar.local:9090");
    expect<u32>(c.pullIntervalMs).toBe(250);
    expect<u32>(c.pullTimeoutMs).toBe(50);
  });

  it("null means off", () => {
    expect<bool>(parseConfig("{" + POOL + ',"pull":null}').config!.pullEnabled()).toBe(false);
  });

  it("can be combined with a control token (push and pull into the same store)", () => {
    const c = parseConfig("{" + BASE + ',"pull":{"cluster":"sc"}}').config!;
    expect<bool>(c.pullEnabled()).toBe(true);
    expect<bool>(c.controlEnabled()).toBe(true);
  });

  it("refuses bad values with a message naming the field", () => {
    const cases: string[][] = [
      ['"pull":true', "pull must be an object"],
      ['"pull":{}', "pull.cluster must"],
      ['"pull":{"cluster":""}', "pull.cluster must"],
      ['"pull":{"cluster":"a b"}', "pull.cluster must"],
      ['"pull":{"cluster":1}', "pull.cluster must"],
      ['"pull":{"cluster":"sc","path":"snapshot"}', "pull.path must"],
      ['"pull":{"cluster":"sc","path":"/snap shot"}', "pull.path must"],
      ['"pull":{"cluster":"sc","path":"/a\\r\\nx: y"}', "pull.path must"],
      ['"pull":{"cluster":"sc","authority":""}', "pull.authority must"],
      ['"pull":{"cluster":"sc","authority":"h\\u0000"}', "pull.authority must"],
      ['"pull":{"cluster":"sc","intervalMs":0}', "pull.intervalMs must"],
      ['"pull":{"cluster":"sc","intervalMs":9}', "pull.intervalMs must"],
      ['"pull":{"cluster":"sc","intervalMs":60001}', "pull.intervalMs must"],
      ['"pull":{"cluster":"sc","intervalMs":100.5}', "pull.intervalMs must"],
      ['"pull":{"cluster":"sc","intervalMs":"100"}', "pull.intervalMs must"],
      ['"pull":{"cluster":"sc","timeoutMs":0}', "pull.timeoutMs must"],
      ['"pull":{"cluster":"sc","timeoutMs":-1}', "pull.timeoutMs must"],
      ['"pull":{"cluster":"sc","timeoutMs":60001}', "pull.timeoutMs must"],
      ['"pull":{"cluster":"sc","interval":100}', "pull has an unknown field interval"],
    ];
    for (let i = 0; i < cases.length; i++) {
      const r = parseConfig("{" + POOL + "," + cases[i][0] + "}");
      expect<bool>(r.config == null).toBe(true);
      expect<bool>(r.error.startsWith("invalid plugin configuration: " + cases[i][1])).toBe(true);
    }
  });
});
