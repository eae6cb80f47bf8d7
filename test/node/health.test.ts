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
    // A field nvidia-smi cannot read because the GPU needs a reset fails it; [Unknown Error] is said.
    s.setRow(0, `${uuid}, 0, 0, No, [GPU requires reset], No, None`);
    c = await s.check('gpu0');
    expect(c.code).toBe(1);
    expect(c.detail).toMatch(/nvidia-smi cannot read remapped rows: \[GPU requires reset\]/);
    s.setRow(0, `${uuid}, 0, [Unknown Error], No, No, No, None`);
    c = await s.check('gpu0');
    expect(c.code, c.detail).toBe(0);
    expect(c.detail).toMatch(/ecc unreadable: \[Unknown Error\]/);
    expect((await s.check('gpu1')).code).toBe(0);
  });

  it('an older driver without gpu_recovery_action is not asked for it; its query still passes', async () => {
    const s = await staged(HOSTS.l40s);
    const real = join(HOSTS.l40s, 'bin/nvidia-smi');
    // What a real nvidia-smi prints for a field it does not know: this message on stdout, exit 2
    // (as posted in CoHDI/composable-resource-operator#37; see fixtures/nvidia/README.md).
    const said = readFileSync(join(import.meta.dirname, '../fixtures/nvidia/unknown-field-cohdi-37.txt'), 'utf8');
    expect(said).toMatch(/^Field "[a-z_.]+" is not a valid field to query\.\n\n$/);
    const message = said.replace(/"[a-z_.]+"/, '"gpu_recovery_action"');
    writeFileSync(
      join(s.host, 'bin/nvidia-smi'),
      `#!/bin/sh\ncase "$*" in *gpu_recovery_action*) printf '%s' '${message}'; exit 2 ;; esac\nexec ${real} "$@"\n`,
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

describe('--disk-cleanup', () => {
  it('runs before the disk gate fails (not when there is room); the journal line and node status say what it freed', async () => {
    const root = tmp('bkci-root-');
    const marks = join(tmp('bkci-marks-'), 'ran');
    const setup = (extra: string[]) =>
      runBkci(['node', 'setup', '--queue', 'q', '--host-root', HOSTS.l40s, '--root', root, '--agent-bin', '/bin/sh', ...extra], {
        env: hostEnv(HOSTS.l40s, { BUILDKITE_AGENT_TOKEN: 'bkat_Health9secretAgentTok' }),
      });
    let r = await setup(['--disk-cleanup', `echo cleaned >> ${marks}`, '--min-free-disk', '1K']);
    expect(r.code, r.stderr).toBe(0);
    const script = readFileSync(join(root, 'etc/buildkite-agent/bkci/disk-cleanup'), 'utf8');
    expect(script).toMatch(new RegExp(`^echo cleaned >> ${marks}$`, 'm'));
    expect(readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu0.env'), 'utf8')).toMatch(
      /^BKCI_DISK_CLEANUP=\/etc\/buildkite-agent\/bkci\/disk-cleanup$/m,
    );
    const runtime = tmp('bkci-run-');
    const check = () =>
      runBkci(['node', 'check', 'gpu0', '--root', root, '--host-root', HOSTS.l40s, '--json'], { env: hostEnv(HOSTS.l40s, { RUNTIME_DIRECTORY: runtime }) });
    let c = await check();
    expect(c.code, c.stdout).toBe(0);
    const { existsSync } = await import('node:fs');
    expect(existsSync(marks)).toBe(false);
    // No file system here has 1 PiB free: the gate runs the cleanup, then fails, saying so.
    r = await setup(['--disk-cleanup', `echo cleaned >> ${marks}`, '--min-free-disk', '1024T']);
    expect(r.code, r.stderr).toBe(0);
    c = await check();
    expect(c.code).toBe(1);
    expect(readFileSync(marks, 'utf8')).toBe('cleaned\n');
    const disk = JSON.parse(c.stdout).items.find((i: { check: string }) => i.check === 'disk');
    expect(disk.detail).toMatch(/below 1024\.0 TiB|below 1024 TiB|below 1\.0 PiB|below .*; disk cleanup freed /);
    expect(c.stderr).toMatch(/bkci: disk cleanup freed .* at \/var\/lib\/buildkite-agent\/builds\/gpu0/);
    // node status reads the last cleanup from the unit's runtime directory.
    const { cpSync: cp, mkdirSync } = await import('node:fs');
    mkdirSync(join(root, 'run'), { recursive: true });
    cp(runtime, join(root, 'run/bkci-agent-gpu0'), { recursive: true });
    const s = await runBkci(['node', 'status', '--root', root, '--json']);
    expect(JSON.parse(s.stdout).agents[0].lastDiskCleanup).toMatchObject({ freed: expect.any(Number) });
    // A failing cleanup is said, and the gate still answers.
    r = await setup(['--disk-cleanup', 'exit 3', '--min-free-disk', '1024T']);
    c = await check();
    expect(c.code).toBe(1);
    expect(JSON.parse(c.stdout).items.find((i: { check: string }) => i.check === 'disk').detail).toMatch(
      /disk cleanup failed: .*disk-cleanup failed \(exit 3\)/,
    );
    // A control character in the command is refused like any other value.
    r = await setup(['--disk-cleanup', 'a\nb']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--disk-cleanup .* has a control character/);
  });
});
