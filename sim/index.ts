// Public surface of the simulator for other folders (bench/, scripts/, tests).
export { Engine, SubmitError, type EngineOptions } from "./engine/engine.ts";
export {
  EngineRequest,
  type FinishReason,
  type RequestCallbacks,
  type SubmitInput,
} from "./engine/request.ts";
export { PRESETS, presetConfig, type EngineConfig, type PresetName } from "./engine/presets.ts";
export { stepTimeMs, type StepTimeModel, type StepShape } from "./engine/step-time.ts";
export { tokenize, renderChat, CHARS_PER_TOKEN, type ChatMessage } from "./engine/tokenizer.ts";
export { Rng } from "./rng.ts";
export type { Clock } from "./clock/clock.ts";
export { VirtualClock } from "./clock/virtual-clock.ts";
export { RealClock } from "./clock/real-clock.ts";
export type { EngineFlavor } from "./engine/metrics.ts";
export { startPodServer, type PodServer, type PodServerOptions } from "./http/server.ts";
export { startSimCluster, type SimCluster, type SimClusterOptions } from "./pods.ts";
