// MIG agents: each sees its own instance. The health gate judges the instance's processes and
// memory (not the parent GPU's), the unit may open only the instance's two capability nodes, and
// a re-partitioned GPU (its MIG UUIDs changed) fails the check.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { judgeHealth } from '../../src/node/check.js';
import { detectHost } from '../../src/node/detect/index.js';
import { planAgents } from '../../src/node/plan.js';
import { migCapNodes, migReport, parseMigMinors, parseMigUsage } from '../../src/node/vendors/nvidia-mig.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, setupOptions, standInAgent } from './helpers.js';

const REAL = readFileSync(join(import.meta.dirname, '../fixtures/nvidia/mig-process-nvitop-pr8.txt'), 'utf8');
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

describe('MIG instance usage from plain nvidia-smi (real output, processes on one instance)', () => {
  it('gives each instance its own processes and memory; whole-GPU processes (N/A) belong to none', () => {
    const u = parseMigUsage(REAL);
    const of = (gpu: number, gi: number) => u.find((x) => x.gpu === gpu && x.gi === gi && x.ci === 0);
    expect(of(1, 3)).toEqual({ gpu: 1, gi: 3, ci: 0, memoryUsedMiB: 14366, pids: [34965, 57247] });
    expect(of(1, 5)).toMatchObject({ memoryUsedMiB: 9826, pids: [46505] });
    expect(of(1, 6)).toEqual({ gpu: 1, gi: 6, ci: 0, memoryUsedMiB: 13, pids: [] });
    expect(u.some((x) => x.pids.includes(23824))).toBe(false);
  });

  it('a busy instance fails only its own agent: the idle instance of the same GPU passes', () => {
    const parent = { id: 'GPU-p', present: true, processes: [1, 2, 3], memoryUsedMiB: 24000, eccUncorrected: 0 };
    const listing = 'GPU 1: A100 (UUID: GPU-p)\n  MIG 3g.20gb Device 0: (UUID: MIG-a)\n  MIG 2g.10gb Device 2: (UUID: MIG-c)\n';
    const busy = migReport(parent, { uuid: 'MIG-a', parent: 'GPU-p', gi: 3, ci: 0 }, listing, REAL);
    const idle = migReport(parent, { uuid: 'MIG-c', parent: 'GPU-p', gi: 6, ci: 0 }, listing, REAL);
    expect(judgeHealth('gpu1-mig0', [busy], undefined, [], 1024).ok).toBe(false);
    expect(judgeHealth('gpu1-mig0', [busy], undefined, [], 1024).items[0]!.detail).toMatch(/2 compute processes left on it \(pid 34965, 57247\)/);
    const r = judgeHealth('gpu1-mig2', [idle], undefined, [], 1024);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    // The instance is gone (re-partitioned): unfit, saying so.
    const gone = migReport(parent, { uuid: 'MIG-old', parent: 'GPU-p', gi: 6, ci: 0 }, listing, REAL);
    expect(gone.present).toBe(false);
    expect(gone.reason).toMatch(/re-partitioned/);
  });
});

describe('MIG capability nodes', () => {
  it('mig-minors maps a GPU minor, GI and CI to its two nodes; nothing when not listed', () => {
    const m = parseMigMinors('config 1\nmonitor 2\ngpu0/gi1/access 12\ngpu0/gi1/ci0/access 13\ngpu3/gi2/access 426\ngpu3/gi2/ci1/access 428\n');
    expect(migCapNodes(m, 0, 1, 0)).toEqual(['/dev/nvidia-caps/nvidia-cap12', '/dev/nvidia-caps/nvidia-cap13']);
    expect(migCapNodes(m, 3, 2, 1)).toEqual(['/dev/nvidia-caps/nvidia-cap426', '/dev/nvidia-caps/nvidia-cap428']);
    expect(migCapNodes(m, 3, 2, 0)).toBeUndefined();
  });

  it('each --mig agent is allowed its own instance’s caps and no other cap', async () => {
    const facts = await detectHost(HOSTS.mig, 'auto', quietIo(hostEnv(HOSTS.mig)));
    const agents = planAgents(facts, setupOptions({ mig: true }));
    const caps = (i: string) => agents.find((a) => a.instance === i)!.deviceAllow.filter((d) => d.includes('caps'));
    // GPU 0 (minor 0): GI 1 and GI 2, CI 0 each; GPU 1 (minor 1): device 0 is GI 2.
    expect(caps('gpu0-mig0')).toEqual(['/dev/nvidia-caps/nvidia-cap12 r', '/dev/nvidia-caps/nvidia-cap13 r']);
    expect(caps('gpu0-mig1')).toEqual(['/dev/nvidia-caps/nvidia-cap21 r', '/dev/nvidia-caps/nvidia-cap22 r']);
    expect(caps('gpu1-mig0')).toEqual([`/dev/nvidia-caps/nvidia-cap${3 + 135 + 18} r`, `/dev/nvidia-caps/nvidia-cap${3 + 135 + 19} r`]);
    expect(caps('gpu2')).toEqual([]);
    expect(agents.flatMap((a) => a.deviceAllow).some((d) => d.startsWith('char-nvidia-caps'))).toBe(false);
    expect(agents.find((a) => a.instance === 'gpu0-mig1')!.env.BKCI_MIG_INSTANCES).toMatch(
      /^MIG-[0-9a-f-]+@GPU-045a4beb-045a-045b-045c-045cc4c7045d\/gi2\/ci0$/,
    );
  });
});

describe('node check on a MIG host (stand-in nvidia-smi)', () => {
  const agentBin = standInAgent();

  it('a job left on gpu0-mig0 takes gpu0-mig0 offline, not gpu0-mig1; a re-partitioned GPU fails its agents', async () => {
    const host = tmp('bkci-mighost-');
    cpSync(HOSTS.mig, host, { recursive: true });
    const root = tmp('bkci-root-');
    const env = hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_x' });
    let r = await runBkci(['node', 'setup', '--queue', 'a100', '--mig', '--host-root', host, '--root', root, '--agent-bin', agentBin], { env });
    expect(r.code, r.stderr).toBe(0);
    const check = (i: string) => runBkci(['node', 'check', i, '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
    // The unit verifies with the cap nodes in DeviceAllow.
    const v = spawnSync('systemd-analyze', ['verify', 'bkci-agent@gpu0-mig1.service', 'bkci-gpu0-mig1.slice'], {
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${root}/etc/systemd/system:`, SYSTEMD_LOG_COLOR: '0' },
      encoding: 'utf8',
    });
    expect((v.stderr + v.stdout).split('\n').filter((l) => l.includes('bkci') || l.includes(root))).toEqual([]);
    expect(readFileSync(join(root, 'etc/systemd/system/bkci-agent@gpu0-mig1.service.d/50-bkci.conf'), 'utf8')).toMatch(
      /^DeviceAllow=\/dev\/nvidia-caps\/nvidia-cap21 r$/m,
    );
    // A process on GPU 0's GI 1 (gpu0-mig0), 9 GiB in use there; the parent GPU's totals say busy.
    const table = join(host, 'out/nvidia-smi-GPU-045a4beb-045a-045b-045c-045cc4c7045d.txt');
    writeFileSync(
      table,
      readFileSync(table, 'utf8')
        .replace(/^\|\s+0\s+1\s+0\s+0\s+\|\s+13MiB/m, '|  0    1   0   0  |   9216MiB')
        .replace(/^\| {2}No running processes found.*$/m, '|    0    1    0       4242      C   python                           9200MiB |'),
    );
    const health = join(host, 'out/nvidia-health.csv');
    writeFileSync(health, readFileSync(health, 'utf8').replace(/^(GPU-045a4beb-045a-045b-045c-045cc4c7045d), 0,/m, '$1, 9229,'));
    r = await check('gpu0-mig0');
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toMatch(/pid 4242/);
    r = await check('gpu0-mig1');
    expect(r.code, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout).items[0].detail).toMatch(/present, idle/);
    // Re-partitioned: GPU 0's second instance has a new UUID.
    const list = join(host, 'out/nvidia-L.txt');
    writeFileSync(list, readFileSync(list, 'utf8').replace(/MIG-703d4ec0-703d-703e-703f-703fc79c7040/, 'MIG-11111111-2222-3333-4444-555555555555'));
    r = await check('gpu0-mig1');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/no longer exists: the GPU was re-partitioned/);
  });
});
