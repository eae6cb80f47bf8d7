// The NVIDIA health gate's fields (issue 12, Health): gpu_recovery_action where the driver has it
// (probed, so an older driver's query still works), remapped rows pending or failed, and `[N/A]`
// fields (no ECC; retired pages on Ampere and later) reported as not applicable, never failures.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS } from './helpers.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

async function staged(source: string) {
  const root = tmp('bkci-root-');
  const host = tmp('bkci-host-');
  cpSync(source, host, { recursive: true });
  const r = await runBkci(['node', 'setup', '--queue', 'q', '--host-root', host, '--root', root, '--agent-bin', '/bin/sh'], {
    env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_Health9secretAgentTok' }),
  });
  expect(r.code, r.stderr).toBe(0);
  const healthFile = join(host, 'out/nvidia-health.csv');
  return {
    host,
    rows: () => readFileSync(healthFile, 'utf8').trim().split('\n'),
    setRow: (i: number, row: string) => {
      const rows = readFileSync(healthFile, 'utf8').trim().split('\n');
      rows[i] = row;
      writeFileSync(healthFile, rows.join('\n') + '\n');
    },
    check: async (agent: string) => {
      const r = await runBkci(['node', 'check', agent, '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
      return { code: r.code, detail: (JSON.parse(r.stdout).items[0]?.detail ?? '') as string, stderr: r.stderr };
    },
  };
}

describe('NVIDIA health fields', () => {
  it('gpu_recovery_action other than None, and remapped rows pending, make the GPU unfit', async () => {
    const s = await staged(HOSTS.h100);
    expect((await s.check('gpu0')).code).toBe(0);
    const uuid = s.rows()[0]!.split(', ')[0]!;
    s.setRow(0, `${uuid}, 0, 0, No, No, No, Node Reboot`);
    let c = await s.check('gpu0');
    expect(c.code).toBe(1);
    expect(c.detail).toMatch(/the driver asks for recovery: Node Reboot/);
    s.setRow(0, `${uuid}, 0, 0, No, Yes, No, None`);
    c = await s.check('gpu0');
    expect(c.code).toBe(1);
    expect(c.detail).toMatch(/row remapping pending \(reset the GPU\)/);
    expect((await s.check('gpu1')).code).toBe(0);
  });

  it('an older driver without gpu_recovery_action is not asked for it; its query still passes', async () => {
    const s = await staged(HOSTS.l40s);
    const real = join(HOSTS.l40s, 'bin/nvidia-smi');
    writeFileSync(
      join(s.host, 'bin/nvidia-smi'),
      `#!/bin/sh\ncase "$*" in *gpu_recovery_action*) echo 'Field "gpu_recovery_action" is not a valid field to query.' >&2; exit 2 ;; esac\nexec ${real} "$@"\n`,
      { mode: 0o755 },
    );
    const c = await s.check('gpu0');
    expect(c.code, c.detail + c.stderr).toBe(0);
    expect(c.detail).toMatch(/^present, idle, no uncorrected errors/);
  });

  it('[N/A] ECC and retired pages (no ECC; Ampere and later) are not applicable, not failures', async () => {
    const s = await staged(HOSTS.l40s);
    const c = await s.check('gpu1');
    expect(c.code).toBe(0);
    expect(c.detail).toMatch(/not applicable: ecc, retired pages/);
  });

  it('the stand-in nvidia-smi prints nothing and exits 0 when no compute apps run, as the real one does', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(join(HOSTS.h100, 'bin/nvidia-smi'), ['--query-compute-apps=gpu_uuid,pid,used_memory', '--format=csv,noheader,nounits', '-i', 'GPU-x'], {
      encoding: 'utf8',
    });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, '', '']);
  });
});
