// A pool for scheduler tests: endpoint i at 10.0.0.i:8000 with i requests waiting, so endpoint 0 has the
// shortest queue and a queue scorer alone picks it.
import { Endpoint } from "../scheduling/types";

export function queuedPool(n: i32): Endpoint[] {
  const eps = new Array<Endpoint>();
  for (let i = 0; i < n; i++) {
    const e = new Endpoint();
    e.slot = i;
    e.hostPort = "10.0.0." + i.toString() + ":8000";
    e.waiting = i;
    eps.push(e);
  }
  return eps;
}
