// Bounded waits: every await of a process exit, an event or a condition in a test has a deadline, so a
// broken behaviour fails with what was awaited instead of hanging until the runner's per-test timeout.

/** Resolves as `promise` does, or rejects naming `what` when `ms` pass first. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Polls `cond` every 10 ms until it holds; rejects naming `what` after `timeoutMs`. Returns the elapsed ms.
 * The deadline is a bound on a hang, not a timing claim: choose it generously (a busy 2-core CI machine).
 */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await cond()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 10));
  }
  if (await cond()) return Date.now() - start;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
