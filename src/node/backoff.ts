// Backing off a failing health gate. systemd restarts an agent 5 s after its check fails, for
// ever (a GPU can come back after a reset); without a backoff a dead GPU's agent would run the
// check and log a failure every 5 s. `node check --backoff` counts the failures in a row in the
// unit's runtime directory and waits longer each time before failing; a pass clears the count.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeIfChanged } from '../util/atomic-write.js';

const FILE = 'check-failures';
export const MAX_BACKOFF_S = 120;

// Extra seconds to wait after the n-th failure in a row (on top of systemd's RestartSec=5):
// 0, 5, 15, 35, 75, then 120 (a cycle of at most ~2 minutes).
export function backoffSeconds(failures: number): number {
  if (failures <= 1) return 0;
  return Math.min(MAX_BACKOFF_S, 5 * (2 ** (failures - 1) - 1));
}

// Records one result; returns the failures in a row including this one (0 after a pass).
export async function recordCheck(dir: string, ok: boolean): Promise<number> {
  const path = join(dir, FILE);
  if (ok) {
    await rm(path, { force: true });
    return 0;
  }
  const before = Number.parseInt((await readFile(path, 'utf8').catch(() => '0')).trim(), 10);
  const n = (Number.isFinite(before) && before > 0 ? before : 0) + 1;
  await writeIfChanged(path, `${n}\n`, 0o600);
  return n;
}
