// What the data path decided for one request, as a value. The director (inference-request.ts, pick.ts) fills
// it without touching the stream; filter.ts applies it in one place. One Decision per VM is reused.

import { KIND_MESSAGES } from "./request/prompt.ts";

/** Error bodies in OpenAI's shape (every path but /v1/messages). */
export const DIALECT_OPENAI: i32 = 0;
/** Error bodies in Anthropic's shape (`POST /v1/messages`). */
export const DIALECT_ANTHROPIC: i32 = 1;

/** The error dialect of a request kind (request/prompt.ts KIND_*). */
export function dialectOf(kind: i32): i32 {
  return kind == KIND_MESSAGES ? DIALECT_ANTHROPIC : DIALECT_OPENAI;
}

/**
 * The error dialect a path tells: Anthropic's for `/v1/messages` and the API's paths under it
 * (`/v1/messages/count_tokens`, `/v1/messages/batches`), which the filter routes without reading the body.
 */
export function dialectOfPath(path: string, kind: i32): i32 {
  return kind == KIND_MESSAGES || path.startsWith("/v1/messages/") ? DIALECT_ANTHROPIC : DIALECT_OPENAI;
}

/** The body's head is not enough yet: keep buffering. */
export const DECIDE_WAIT: i32 = 0;
/** Destinations chosen: write them (and any rewrite) and continue. */
export const DECIDE_ROUTE: i32 = 1;
/** Answer locally with `status` and `body`. */
export const DECIDE_REPLY: i32 = 2;
/** Let the request through untouched (the pool's failure mode is FailOpen). */
export const DECIDE_PASS: i32 = 3;
/** Flow control: the pool has no room; hold the stream in the queue (any rewrite is carried out now). */
export const DECIDE_QUEUE: i32 = 4;

export class Decision {
  kind: i32 = DECIDE_WAIT;

  // DECIDE_ROUTE
  /** The x-gateway-destination-endpoint value: the pick, then fallbacks. */
  destinations: string = "";
  /** The pick (`ip:port`). */
  served: string = "";
  /** The model the server will see (x-gateway-model-name), or null when the body was not read. */
  targetModel: string | null = null;
  /** A rewritten head to write over the body's bytes [0, headEnd), or null. */
  head: Uint8Array | null = null;
  headEnd: i32 = 0;
  /** The content-length to set after a rewrite; -1 leaves it. */
  contentLength: i64 = -1;
  /** Headers the scheduler's plugins want on the response (session affinity's token). */
  responseNames: string[] = [];
  responseValues: string[] = [];

  // DECIDE_QUEUE
  /** The request's priority (its band) and fairness id. */
  priority: i32 = 0;
  fairnessId: string = "";

  // Metric labels and figures (metrics.ts); set by the director when it knows them.
  /** The body's `model` as requested, or null (no body read). */
  modelName: string | null = null;
  /** The model the request resolves to (set before scheduling, so a 429 has it too), or null. */
  targetName: string | null = null;
  /** The objective header's value ("" when absent). */
  objective: string = "";
  /** Prompt blocks the prefix producer looked up, and how many the pick had cached; -1 = not computed. */
  promptBlocks: i32 = -1;
  matchedBlocks: i32 = 0;
  /** A health-path answer: not an inference request, so not counted. */
  probe: bool = false;

  // DECIDE_REPLY
  status: u32 = 0;
  details: string = "";
  /** A ready-made body (reply()); "" for an error, whose body apply() renders in `dialect` (replies.ts). */
  body: string = "";
  /** Which API's error shape the request's client expects (DIALECT_*); set from the path or the body's kind. */
  dialect: i32 = DIALECT_OPENAI;
  /** error(): the message, OpenAI's type, code and param ("" = null); Anthropic's type follows the status. */
  message: string = "";
  errorType: string = "";
  code: string = "";
  param: string = "";
  /** Extra reply headers (content-type is always application/json). */
  replyNames: string[] = [];
  replyValues: string[] = [];

  /** Clears the decision for a new one; `dialect` is the request's, as far as the path tells. */
  reset(dialect: i32 = DIALECT_OPENAI): void {
    this.kind = DECIDE_WAIT;
    this.dialect = dialect;
    this.message = "";
    this.errorType = "";
    this.code = "";
    this.param = "";
    this.destinations = "";
    this.served = "";
    this.targetModel = null;
    this.head = null;
    this.headEnd = 0;
    this.contentLength = -1;
    this.responseNames.length = 0;
    this.responseValues.length = 0;
    this.priority = 0;
    this.fairnessId = "";
    this.modelName = null;
    this.targetName = null;
    this.objective = "";
    this.promptBlocks = -1;
    this.matchedBlocks = 0;
    this.probe = false;
    this.status = 0;
    this.details = "";
    this.body = "";
    this.replyNames.length = 0;
    this.replyValues.length = 0;
  }

  route(destinations: string, served: string): void {
    this.kind = DECIDE_ROUTE;
    this.destinations = destinations;
    this.served = served;
  }

  /** Hold in the flow-control queue. */
  hold(priority: i32, fairnessId: string): void {
    this.kind = DECIDE_QUEUE;
    this.priority = priority;
    this.fairnessId = fairnessId;
  }

  pass(): void {
    this.kind = DECIDE_PASS;
  }

  /** A local reply with a ready-made JSON body. */
  reply(status: u32, details: string, body: string): void {
    this.kind = DECIDE_REPLY;
    this.status = status;
    this.details = details;
    this.body = body;
  }

  /**
   * A local reply with an error body in the request's dialect (rendered by apply()); details are
   * `epp_<code>` (`epp_invalid_request` without a code). `type` and `code` are OpenAI's; `param` names the
   * field at fault ("" = none).
   */
  error(status: u32, message: string, type: string, code: string, param: string = ""): void {
    this.reply(status, code.length > 0 ? "epp_" + code : "epp_invalid_request", "");
    this.message = message;
    this.errorType = type;
    this.code = code;
    this.param = param;
  }

  /** An error (error()) rather than a ready-made body. */
  @inline get isError(): bool {
    return this.errorType.length > 0;
  }

  /** Adds a header to the local reply (call after reply/error). */
  withHeader(name: string, value: string): void {
    this.replyNames.push(name);
    this.replyValues.push(value);
  }

  @inline get decided(): bool {
    return this.kind != DECIDE_WAIT;
  }
}
