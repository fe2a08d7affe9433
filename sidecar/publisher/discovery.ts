// Finds Envoy push targets: a static list of URLs, or every Running+Ready pod matching a label selector
// (each pod IP, never a Service — every Envoy process holds its own shared data and needs its own push).
import * as k8s from "@kubernetes/client-node";
import type { PublishTarget } from "./publisher.ts";
import type { Logger } from "../inventory/types.ts";

export function staticTargets(urls: string[]): PublishTarget[] {
  return urls.map((url) => {
    const parsed = new URL(url); // throws with the URL in the message when malformed
    return { id: `static:${parsed.origin}`, url: parsed.origin };
  });
}

export interface PodDiscoveryOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  /** `app=envoy,tier=edge` (equality only). */
  selector: string;
  /** The port of the listener that carries the control path. */
  port: number;
  onTargets: (targets: PublishTarget[]) => void;
  logger: Logger;
}

function isReady(pod: k8s.V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp || pod.status?.phase !== "Running" || !pod.status.podIP) return false;
  return (pod.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

function hostForUrl(ip: string): string {
  return ip.includes(":") ? `[${ip}]` : ip;
}

/** Watches Envoy pods and reports the target list whenever it changes. */
export class PodTargetDiscovery {
  private informer?: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
  private stopped = false;

  constructor(private readonly opts: PodDiscoveryOptions) {}

  async start(): Promise<void> {
    const api = this.opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const { namespace, selector } = this.opts;
    const path = `/api/v1/namespaces/${namespace}/pods`;
    this.informer = k8s.makeInformer(
      this.opts.kubeConfig,
      path,
      () => api.listNamespacedPod({ namespace, labelSelector: selector }),
      selector,
    );
    const emit = () => this.emit();
    this.informer.on("add", emit);
    this.informer.on("update", emit);
    this.informer.on("delete", emit);
    this.informer.on("error", (err: unknown) => {
      this.opts.logger.warn({ err: String(err) }, "envoy pod watch failed; retrying");
      if (!this.stopped) setTimeout(() => void this.informer?.start().catch(() => {}), 2000).unref();
    });
    await this.informer.start();
    this.emit();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
  }

  private emit(): void {
    const targets = (this.informer?.list() ?? []).filter(isReady).map((pod) => ({
      id: `pod:${pod.metadata?.namespace}/${pod.metadata?.name}`,
      url: `http://${hostForUrl(pod.status!.podIP!)}:${this.opts.port}`,
    }));
    this.opts.onTargets(targets);
  }
}
