// The shape of the plugin catalogue: every EndpointPickerConfig plugin type the filter implements, with
// its parameters. The config loader validates against it and docs/scheduling.md is checked against it.

export type ParamType =
  | { kind: "number"; min?: number; max?: number }
  | { kind: "integer"; min?: number; max?: number }
  | { kind: "boolean" }
  | { kind: "string" }
  /** A Go-style duration ("200ms", "1.5s"), sent to the filter as milliseconds. */
  | { kind: "duration" }
  | { kind: "enum"; values: readonly string[] };

export interface ParamSpec {
  type: ParamType;
  default: number | string | boolean;
  doc: string;
}

export type PluginKind =
  "scorer" | "filter" | "picker" | "profile-handler" | "saturation-detector" | "producer";

export interface PluginSpec {
  type: string;
  kind: PluginKind;
  /** Who defines the type: upstream GIE v1.5, llm-d Router, or this project. */
  origin: "gie" | "llm-d" | "epp-wasm";
  doc: string;
  params: Readonly<Record<string, ParamSpec>>;
}
