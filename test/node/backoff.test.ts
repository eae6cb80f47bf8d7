// The health gate's backoff: the wait grows with failures in a row and a pass resets it.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backoffSeconds, MAX_BACKOFF_S, recordCheck } from '../../src/node/backoff.js';

describe('health-gate backoff', () => {
  it('waits 0, 5, 15, 35, 75 s, then at most two minutes', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(backoffSeconds)).toEqual([0, 5, 15, 35, 75, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S]);
    expect(MAX_BACKOFF_S).toBe(120);
    expect(backoffSeconds(0)).toBe(0);
  });

  it('counts failures in a row in the state directory; a pass clears them; garbage counts as none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-backoff-'));
    expect(await recordCheck(dir, false)).toBe(1);
    expect(await recordCheck(dir, false)).toBe(2);
    expect(readFileSync(join(dir, 'check-failures'), 'utf8')).toBe('2\n');
    expect(await recordCheck(dir, true)).toBe(0);
    expect(existsSync(join(dir, 'check-failures'))).toBe(false);
    expect(await recordCheck(dir, true)).toBe(0);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'check-failures'), 'nonsense');
    expect(await recordCheck(dir, false)).toBe(1);
  });
});
