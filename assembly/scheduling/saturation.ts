// Admission by the SCHEDULER record's thresholds, for callers that hold a SchedulerConfig rather than a
// built utilization-detector (plugins/utilization-detector.ts owns the rule).

import { Endpoint, RequestInfo, SchedulerConfig } from "./types.ts";
import { UtilizationDetector } from "./plugins/utilization-detector.ts";

function detectorFor(cfg: SchedulerConfig): UtilizationDetector {
  return new UtilizationDetector(cfg.queueThreshold, cfg.kvThreshold, cfg.metricsStalenessMs, 0);
}

export function isSaturated(eps: Endpoint[], cfg: SchedulerConfig): bool {
  return detectorFor(cfg).isSaturated(eps);
}

/** SCHEDULE_OK, or SCHEDULE_SHED when the request is sheddable and the pool saturated. */
export function admit(eps: Endpoint[], req: RequestInfo, cfg: SchedulerConfig): i32 {
  return detectorFor(cfg).admit(eps, req);
}
