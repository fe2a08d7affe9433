// A local, plain-HTTP stand-in for the Kubernetes API server that speaks enough of the list/watch protocol
// for @kubernetes/client-node informers: lists with metadata.resourceVersion, chunked newline-delimited
// watch streams (ADDED/MODIFIED/DELETED/BOOKMARK) resumable from a resourceVersion, 410 Gone for versions
// older than the last compaction, equality label selectors, and hooks to drop connections from a test.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

export interface FakeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

type EventType = "ADDED" | "MODIFIED" | "DELETED";

interface HistoryEvent {
  rv: number;
  type: EventType;
  collection: string;
  object: FakeObject;
  previous?: FakeObject;
}

interface Watcher {
  collection: string;
  namespace?: string;
  selector: Record<string, string>;
  res: ServerResponse;
}

const PLURALS: Record<string, string> = {
  Pod: "pods",
  ConfigMap: "configmaps",
  InferencePool: "inferencepools",
  InferenceModel: "inferencemodels",
  InferenceObjective: "inferenceobjectives",
  InferenceModelRewrite: "inferencemodelrewrites",
};

/** "group/version/plural" ("v1/pods" for core). */
function collectionOf(obj: FakeObject): string {
  const plural = PLURALS[obj.kind];
  if (plural === undefined) throw new Error(`fake apiserver: unknown kind ${obj.kind}`);
  return `${obj.apiVersion}/${plural}`;
}

function keyOf(obj: FakeObject): string {
  return `${collectionOf(obj)}/${obj.metadata.namespace ?? "default"}/${obj.metadata.name}`;
}

function parseSelector(s: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const part of s.split(",")) {
    const [k, v] = part.split("=");
    if (k) out[k.trim()] = (v ?? "").trim();
  }
  return out;
}

function matches(obj: FakeObject, namespace: string | undefined, selector: Record<string, string>): boolean {
  if (namespace !== undefined && (obj.metadata.namespace ?? "default") !== namespace) return false;
  const labels = (obj.metadata.labels ?? {}) as Record<string, string>;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export class FakeApiServer {
  /** Every request's path and query, for assertions. */
  readonly requests: string[] = [];
  /** Collections that answer 404 (CRD not installed). */
  readonly missing = new Set<string>();
  /** When set, too-old watches get HTTP 410 instead of a 200 stream with an ERROR event. */
  goneAsHttpStatus = false;
  /** The next this-many requests get HTTP 500 (an API server in trouble). */
  failRequests = 0;
  private rv = 100;
  private compactedRv = 0;
  private readonly objects = new Map<string, FakeObject>();
  private readonly history: HistoryEvent[] = [];
  private readonly watchers = new Set<Watcher>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeApiServer> {
    const holder: { self?: FakeApiServer } = {};
    const server = createServer((req, res) => holder.self!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    holder.self = new FakeApiServer(server, `http://127.0.0.1:${port}`);
    return holder.self;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: "fake", server: this.url, skipTLSVerify: true },
      { name: "tester", token: "t" },
    );
    return kc;
  }

  get watchCount(): number {
    return this.watchers.size;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** Creates or replaces an object (ADDED / MODIFIED) and returns the stored copy. */
  apply(obj: FakeObject): FakeObject {
    const key = keyOf(obj);
    const previous = this.objects.get(key);
    const stored: FakeObject = structuredClone(obj);
    stored.metadata.namespace ??= "default";
    stored.metadata.resourceVersion = String(++this.rv);
    stored.metadata.creationTimestamp ??=
      (previous?.metadata.creationTimestamp as string | undefined) ??
      new Date(Date.UTC(2026, 0, 1, 0, 0, this.rv)).toISOString();
    this.objects.set(key, stored);
    this.record(previous === undefined ? "ADDED" : "MODIFIED", stored, previous);
    return stored;
  }

  delete(obj: Pick<FakeObject, "apiVersion" | "kind" | "metadata">): void {
    const key = keyOf(obj as FakeObject);
    const previous = this.objects.get(key);
    if (previous === undefined) return;
    this.objects.delete(key);
    const gone = structuredClone(previous);
    gone.metadata.resourceVersion = String(++this.rv);
    this.record("DELETED", gone, previous);
  }

  /** Forgets history: watches from any version older than now get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history.length = 0;
  }

  /** Cuts every open watch connection without a clean end (like a network failure). */
  dropWatches(): void {
    for (const w of this.watchers) w.res.socket?.destroy();
    this.watchers.clear();
  }

  /** Sends a BOOKMARK with the current version to watches that asked for bookmarks. */
  bookmark(): void {
    for (const w of this.watchers)
      this.send(w.res, "BOOKMARK", {
        apiVersion: w.collection.split("/").slice(0, -1).join("/"),
        kind: "Bookmark",
        metadata: { name: "", resourceVersion: String(this.rv) },
      });
  }

  async close(): Promise<void> {
    this.dropWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private record(type: EventType, object: FakeObject, previous?: FakeObject): void {
    const ev: HistoryEvent = { rv: this.rv, type, collection: collectionOf(object), object, previous };
    this.history.push(ev);
    for (const w of this.watchers) this.deliver(w, ev);
  }

  /** Label-selected watches see an object leaving the selection as DELETED and entering it as ADDED. */
  private deliver(w: Watcher, ev: HistoryEvent): void {
    if (ev.collection !== w.collection) return;
    const now = matches(ev.object, w.namespace, w.selector);
    const before = ev.previous !== undefined && matches(ev.previous, w.namespace, w.selector);
    if (ev.type === "DELETED") {
      if (before) this.send(w.res, "DELETED", ev.object);
    } else if (now) this.send(w.res, before || ev.type === "ADDED" ? ev.type : "ADDED", ev.object);
    else if (before) this.send(w.res, "DELETED", ev.object);
  }

  private send(res: ServerResponse, type: string, object: unknown): void {
    if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify({ type, object }) + "\n");
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", this.url);
    this.requests.push(url.pathname + url.search);
    if (this.failRequests > 0) {
      this.failRequests--;
      return this.status(res, 500, "InternalError", "injected failure");
    }
    const route = this.route(url.pathname);
    if (req.method !== "GET" || route === undefined || this.missing.has(route.collection)) {
      return this.status(res, 404, "NotFound", `the server could not find the requested resource`);
    }
    const selector = parseSelector(url.searchParams.get("labelSelector"));
    if (url.searchParams.get("watch") === "true") return this.watch(url, route, selector, res);
    const items = [...this.objects.values()].filter(
      (o) => collectionOf(o) === route.collection && matches(o, route.namespace, selector),
    );
    const kind = (items[0]?.kind ?? "Object") + "List";
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        apiVersion: route.collection.split("/").slice(0, -1).join("/"),
        kind,
        metadata: { resourceVersion: String(this.rv) },
        items,
      }),
    );
  }

  private watch(
    url: URL,
    route: { collection: string; namespace?: string },
    selector: Record<string, string>,
    res: ServerResponse,
  ): void {
    const from = Number(url.searchParams.get("resourceVersion") || "0");
    if (from !== 0 && from < this.compactedRv) {
      if (this.goneAsHttpStatus) return this.status(res, 410, "Expired", "too old resource version");
      res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
      this.send(res, "ERROR", {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        message: `too old resource version: ${from} (${this.compactedRv})`,
        reason: "Expired",
        code: 410,
      });
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const w: Watcher = { collection: route.collection, namespace: route.namespace, selector, res };
    for (const ev of this.history) if (ev.rv > from) this.deliver(w, ev);
    this.watchers.add(w);
    const timeout = Number(url.searchParams.get("timeoutSeconds") || "0");
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on("close", () => {
      clearTimeout(timer);
      this.watchers.delete(w);
    });
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code }));
  }

  private route(path: string): { collection: string; namespace?: string } | undefined {
    let m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?([^/]+)$/.exec(path);
    if (m) return { collection: `v1/${m[2]}`, namespace: m[1] };
    m = /^\/apis\/([^/]+)\/([^/]+)\/(?:namespaces\/([^/]+)\/)?([^/]+)$/.exec(path);
    if (m) return { collection: `${m[1]}/${m[2]}/${m[4]}`, namespace: m[3] };
    return undefined;
  }
}
