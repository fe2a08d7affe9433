// Test support: stream callbacks that record what the filter manager lets through.
import type { HeaderList, LocalReply, StreamCallbacks } from "../../host/index.ts";

export function recorder(): StreamCallbacks & {
  events: string[];
  replies: LocalReply[];
  reqHeaders: HeaderList[];
  reqData: string[];
} {
  const events: string[] = [];
  const replies: LocalReply[] = [];
  const reqHeaders: HeaderList[] = [];
  const reqData: string[] = [];
  return {
    events,
    replies,
    reqHeaders,
    reqData,
    forwardRequestHeaders: (h, e) => {
      reqHeaders.push(h);
      events.push(`reqH eos=${e}`);
    },
    forwardRequestData: (d, e) => {
      reqData.push(new TextDecoder().decode(d));
      events.push(`reqD ${d.length} eos=${e}`);
    },
    forwardResponseHeaders: (_h, e) => events.push(`respH eos=${e}`),
    forwardResponseData: (d, e) => events.push(`respD ${d.length} eos=${e}`),
    localReply: (r) => {
      replies.push(r);
      events.push(`local ${r.status} ${r.details}`);
    },
    reset: (reason) => events.push(`reset ${reason}`),
  };
}

export const REQ: HeaderList = [
  [":method", "POST"],
  [":path", "/v1/chat?x=1"],
  [":authority", "gw"],
  [":scheme", "http"],
  ["x-model", "m1"],
];
