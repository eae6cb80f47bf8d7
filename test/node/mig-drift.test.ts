// A re-partitioned MIG GPU (its MIG devices, UUIDs or GPU/compute instances changed since setup) is
// drift in `node status` (the agents' rows say why, --json too) and a failing `mig partition`
// check in `node doctor` naming the agents, the old and the new partition and the fix.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { migDevicesNow, migPartitionChanges, parseMigTable, parseNvidiaListing, partitionDrift } from '../../src/node/vendors/nvidia-mig.js';
import type { ManifestAgent } from '../../src/node/vendors/types.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, standInAgent } from './helpers.js';

const REAL = readFileSync(join(import.meta.dirname, '../fixtures/nvidia/mig-process-nvitop-pr8.txt'), 'utf8');
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

describe('the MIG devices table: one parser for detection and the health gate', () => {
  it('gives GPU, GI, CI, device number and memory of each row (real output)', () => {
    const rows = parseMigTable(REAL);
    expect(rows.slice(0, 3)).toEqual([
      { gpu: 1, gi: 3, ci: 0, device: 0, memoryUsedMiB: 14366, memoryTotalMiB: 19968 },
      { gpu: 1, gi: 5, ci: 0, device: 1, memoryUsedMiB: 9826, memoryTotalMiB: 19968 },
      { gpu: 1, gi: 6, ci: 0, device: 2, memoryUsedMiB: 13, memoryTotalMiB: 19968 },
    ]);
    // Nothing from the processes table.
    expect(rows.every((r) => r.memoryTotalMiB !== undefined)).toBe(true);
    expect(parseMigTable('no table here')).toEqual([]);
  });
});

const agent = (instance: string, index: number, mig: string | undefined, profile?: string, uuids = 'GPU-p'): ManifestAgent => ({
  instance,
  unit: `bkci-agent@${instance}.service`,
  gpuIndices: [index],
  env: { BKCI_GPU_UUIDS: uuids, ...(mig ? { BKCI_MIG_INSTANCES: mig } : {}) },
  tags: profile ? [`mig-profile=${profile}`] : [],
});

describe('migPartitionChanges (pure)', () => {
  const listing = (migs: string) => parseNvidiaListing(`GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-p)\n${migs}GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-q)\n`);
  const table = (rows: [number, number, number][]) =>
    parseMigTable(`| MIG devices: |\n${rows.map(([gi, ci, dev]) => `|  0   ${gi}   ${ci}   ${dev}  |  13MiB / 40192MiB | 42 0 |`).join('\n')}\n`);
  const agents = [
    agent('gpu0-mig0', 0, 'MIG-a@GPU-p/gi2/ci0', '3g.40gb'),
    agent('gpu0-mig1', 0, 'MIG-b@GPU-p/gi3/ci0', '2g.20gb'),
    agent('gpu1', 1, undefined, undefined, 'GPU-q'),
  ];

  it('the same devices: nothing', () => {
    const now = migDevicesNow(
      listing('  MIG 3g.40gb Device 0: (UUID: MIG-a)\n  MIG 2g.20gb Device 1: (UUID: MIG-b)\n'),
      table([
        [2, 0, 0],
        [3, 0, 1],
      ]),
    );
    expect(migPartitionChanges(agents, now)).toEqual([]);
  });

  it('a device replaced: both agents of the GPU, the old and new partition', () => {
    const now = migDevicesNow(
      listing('  MIG 3g.40gb Device 0: (UUID: MIG-a)\n  MIG 1g.10gb Device 1: (UUID: MIG-c)\n'),
      table([
        [2, 0, 0],
        [9, 0, 1],
      ]),
    );
    const [c, ...rest] = migPartitionChanges(agents, now);
    expect(rest).toEqual([]);
    expect(c).toEqual({
      parent: 'GPU-p',
      index: 0,
      was: '3g.40gb (GI 2 CI 0) for gpu0-mig0, 2g.20gb (GI 3 CI 0) for gpu0-mig1',
      now: '3g.40gb (GI 2 CI 0), 1g.10gb (GI 9 CI 0)',
      agents: [
        { instance: 'gpu0-mig0', gone: false },
        { instance: 'gpu0-mig1', gone: true },
      ],
    });
    const d = partitionDrift([c!]);
    expect(d.map((x) => x.instance)).toEqual(['gpu0-mig0', 'gpu0-mig1']);
    expect(d[1]!.problem).toMatch(/^GPU 0 \(GPU-p\) was re-partitioned since setup: .*MIG device is gone/);
    expect(d[0]!.fix).toMatch(/re-run bkci node setup --mig/);
  });

  it('the same UUID on another GPU instance, MIG mode turned off, a whole GPU split: all changes', () => {
    const moved = migDevicesNow(
      listing('  MIG 3g.40gb Device 0: (UUID: MIG-a)\n  MIG 2g.20gb Device 1: (UUID: MIG-b)\n'),
      table([
        [1, 0, 0],
        [3, 0, 1],
      ]),
    );
    expect(migPartitionChanges(agents, moved).map((c) => c.parent)).toEqual(['GPU-p']);
    const off = migDevicesNow(listing(''), []);
    expect(migPartitionChanges(agents, off)[0]!.now).toMatch(/no MIG devices/);
    const split = migDevicesNow(
      parseNvidiaListing(
        'GPU 0: A (UUID: GPU-p)\n  MIG 3g.40gb Device 0: (UUID: MIG-a)\n  MIG 2g.20gb Device 1: (UUID: MIG-b)\nGPU 1: A (UUID: GPU-q)\n  MIG 7g.80gb Device 0: (UUID: MIG-z)\n',
      ),
      [],
    );
    expect(migPartitionChanges(agents, split)).toEqual([
      { parent: 'GPU-q', index: 1, was: 'the whole GPU for gpu1', now: '7g.80gb', agents: [{ instance: 'gpu1', gone: true }] },
    ]);
  });

  it('a GPU gone from the listing is not a re-partition (missing GPUs are reported as such); no MIG agents: nothing', () => {
    const now = migDevicesNow(parseNvidiaListing('GPU 0: A (UUID: GPU-q)\n'), []);
    expect(migPartitionChanges(agents, now)).toEqual([]);
    expect(migPartitionChanges([agents[2]!], migDevicesNow(listing('  MIG 1g.10gb Device 0: (UUID: MIG-c)\n'), []))).toEqual([]);
  });
});

describe('node status and doctor after the GPU was re-partitioned (staged tree, stand-in nvidia-smi)', () => {
  const agentBin = standInAgent();

  it('names the agents, the old and new partition and the fix; a re-run of setup clears it', async () => {
    const host = tmp('bkci-mighost-');
    cpSync(HOSTS.migUneven, host, { recursive: true });
    const root = tmp('bkci-root-');
    const env = hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_x' });
    const setup = () => runBkci(['node', 'setup', '--queue', 'a100', '--mig', '--host-root', host, '--root', root, '--agent-bin', agentBin], { env });
    const status = async () => {
      const r = await runBkci(['node', 'status', '--root', root, '--json'], { env: hostEnv(host) });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { agents: { instance: string; drift?: { problem: string; fix: string } }[] };
    };
    type Item = { check: string; status: string; detail: string; fix?: string };
    const doctor = async () => {
      const r = await runBkci(['node', 'doctor', '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
      return { code: r.code, item: (JSON.parse(r.stdout).checks as Item[]).find((c) => c.check === 'mig partition') };
    };
    let r = await setup();
    expect(r.code, r.stderr).toBe(0);
    expect((await status()).agents.filter((a) => a.drift)).toEqual([]);
    expect((await doctor()).item).toMatchObject({ status: 'ok', detail: '7 MIG agents, each on the MIG device setup made it for' });

    // GPU 0 re-partitioned: the 3g.40gb stays, the 2g.20gb and both 1g.10gb make way for a second 3g.40gb.
    const L = join(host, 'out/nvidia-L.txt');
    const lines = readFileSync(L, 'utf8').split('\n');
    const first = lines.findIndex((l) => l.includes('MIG 2g.20gb'));
    lines.splice(first, 3, '  MIG 3g.40gb     Device  1: (UUID: MIG-3c0d52b1-8a4e-5f11-9e0c-6a3b2f7d9e41)');
    writeFileSync(L, lines.join('\n'));
    const T = join(host, 'out/nvidia-smi.txt');
    writeFileSync(
      T,
      readFileSync(T, 'utf8')
        .replace(
          /^\| {2}0 {4}3 {3}0 {3}1 {2}\|.*\n.*\n.*\n/m,
          '|  0    1   0   1  |     13MiB / 40192MiB | 42      0 |  3   0    2    0    0 |\n|                  |      0MiB / 65535MiB |           |                       |\n+------------------+----------------------+-----------+-----------------------+\n',
        )
        .replace(/^\| {2}0 {4}9 {3}0 {3}2 {2}\|.*\n.*\n.*\n/m, '')
        .replace(/^\| {2}0 {3}10 {3}0 {3}3 {2}\|.*\n.*\n.*\n/m, ''),
    );

    const s = await status();
    const drift = Object.fromEntries(s.agents.filter((a) => a.drift).map((a) => [a.instance, a.drift!]));
    expect(Object.keys(drift)).toEqual(['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu0-mig3']);
    expect(drift['gpu0-mig0']!.problem).toMatch(
      /^GPU 0 \(GPU-[0-9a-f-]+\) was re-partitioned since setup: it had 3g\.40gb \(GI 2 CI 0\) for gpu0-mig0, 2g\.20gb \(GI 3 CI 0\) for gpu0-mig1, 1g\.10gb \(GI 9 CI 0\) for gpu0-mig2, 1g\.10gb \(GI 10 CI 0\) for gpu0-mig3; it has 3g\.40gb \(GI 2 CI 0\), 3g\.40gb \(GI 1 CI 0\)\./,
    );
    expect(drift['gpu0-mig0']!.problem).toMatch(/still there/);
    expect(drift['gpu0-mig1']!.problem).toMatch(/MIG device is gone/);
    expect(drift['gpu0-mig1']!.fix).toMatch(/re-run bkci node setup --mig/);
    // The text table's reason column says it too.
    const text = await runBkci(['node', 'status', '--root', root], { env: hostEnv(host) });
    expect(text.stdout.split('\n').find((l) => l.includes('a100-mixed-gpu0-mig2'))).toMatch(/re-partitioned since setup/);
    expect(text.stdout.split('\n').find((l) => l.includes('a100-mixed-gpu2-mig0'))).not.toMatch(/re-partitioned/);

    let d = await doctor();
    expect(d.code).toBe(1);
    expect(d.item!.status).toBe('fail');
    expect(d.item!.detail).toMatch(
      /^GPU 0 \(GPU-[0-9a-f-]+\) was re-partitioned since setup: it had 3g\.40gb \(GI 2 CI 0\) for gpu0-mig0, .*; it has 3g\.40gb \(GI 2 CI 0\), 3g\.40gb \(GI 1 CI 0\)/,
    );
    expect(d.item!.detail).toMatch(/agents gpu0-mig0, gpu0-mig1 \(its device is gone\), gpu0-mig2 \(its device is gone\), gpu0-mig3 \(its device is gone\)/);
    expect(d.item!.fix).toMatch(/re-run bkci node setup --mig/);

    // Setup again: agents for the GPU's devices as they are now; nothing drifts.
    r = await setup();
    expect(r.code, r.stderr).toBe(0);
    expect((await status()).agents.filter((a) => a.drift)).toEqual([]);
    d = await doctor();
    expect(d.item).toMatchObject({ status: 'ok', detail: '5 MIG agents, each on the MIG device setup made it for' });
  });
});

describe('migPartitionChanges: instances made again with the same layout', () => {
  it('says the layout is the same but the UUIDs are new', () => {
    const agents = [agent('gpu0-mig0', 0, 'MIG-a@GPU-p/gi2/ci0', '3g.40gb')];
    const now = migDevicesNow(
      parseNvidiaListing('GPU 0: A (UUID: GPU-p)\n  MIG 3g.40gb Device 0: (UUID: MIG-new)\n'),
      parseMigTable('| MIG devices: |\n|  0    2   0   0  |  13MiB / 40192MiB |\n'),
    );
    const [c] = migPartitionChanges(agents, now);
    expect(c!.now).toBe('3g.40gb (GI 2 CI 0) (the same layout, with new MIG device UUIDs: the instances were destroyed and made again)');
    expect(c!.agents).toEqual([{ instance: 'gpu0-mig0', gone: true }]);
  });
});
