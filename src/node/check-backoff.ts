// The health gate's backoff as `node check --backoff` applies it: count the result in the unit's
// runtime directory, and after repeated failures wait before reporting (see backoff.ts).
import type { Io } from '../util/io.js';
import { backoffSeconds, recordCheck } from './backoff.js';

// systemd sets RUNTIME_DIRECTORY for the unit (RuntimeDirectory=); elsewhere there is no backoff.
export function backoffDir(env: Io['env']): string | undefined {
  return env.RUNTIME_DIRECTORY?.split(':')[0] || undefined;
}

// Records the check's result; after the n-th failure in a row waits backoffSeconds(n).
export async function backOffAfter(agent: string, ok: boolean, dir: string, io: Io): Promise<void> {
  // The count is a nicety: a runtime directory that cannot be written means no backoff, not a failed gate.
  const failures = await recordCheck(dir, ok).catch((err: Error) => {
    io.log.warn({ dir }, `cannot keep the failure count (${err.message}); no backoff`);
    return 0;
  });
  const wait = backoffSeconds(failures);
  if (wait > 0) {
    io.log.warn({ agent, failures, waitSeconds: wait }, `check failed ${failures} times in a row; waiting ${wait}s before reporting it`);
    await io.sleep(wait * 1000);
  }
}
