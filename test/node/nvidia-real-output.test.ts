// The NVIDIA fixture hosts against real, published tool output (test/fixtures/nvidia/README.md
// names each source): the MIG hosts' /proc/driver/nvidia-caps/mig-minors against the lines
// NVIDIA's MIG User Guide publishes, and the parsers on real outputs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NVIDIA_HEALTH_FIELDS, NVIDIA_OPTIONAL_HEALTH_FIELDS, parseNvidiaHealth, parseNvidiaList } from '../../src/node/vendors/nvidia.js';
import { fabricProblem, parseFabric } from '../../src/node/vendors/nvidia-host.js';
import { migCapNodes, parseMigMinors, parseMigTable, parseMigUsage } from '../../src/node/vendors/nvidia-mig.js';
import { HOSTS } from './helpers.js';

const NVIDIA_FIX = join(import.meta.dirname, '../fixtures/nvidia');
const fixture = (name: string) => readFileSync(join(NVIDIA_FIX, name), 'utf8');

describe('/proc/driver/nvidia-caps/mig-minors', () => {
  const file = readFileSync(join(HOSTS.mig, 'proc/driver/nvidia-caps/mig-minors'), 'utf8');
  // The driver prints the same table on every host, whatever is partitioned.
  it('is the same on every MIG fixture host', () => {
    expect(readFileSync(join(HOSTS.migUneven, 'proc/driver/nvidia-caps/mig-minors'), 'utf8')).toBe(file);
  });
  // `$ cat ...` and the elided middle (`...`) are the guide's; the rest are the file's lines.
  const published = fixture('mig-minors-mig-user-guide.txt')
    .split('\n')
    .filter((l) => /^\S+ \d+$/.test(l));

  it('the MIG host prints the lines NVIDIA publishes, in order: the head and the tail of the table', () => {
    const lines = file.trimEnd().split('\n');
    expect(published).toHaveLength(8);
    expect(lines.slice(0, 6)).toEqual(published.slice(0, 6));
    expect(lines.slice(-2)).toEqual(published.slice(6));
    // One line per minor from 1 to the last, each once: the driver's fixed table (32 GPU minors,
    // 15 GPU instances, 8 compute instances).
    expect(lines.map((l) => Number(l.split(' ')[1]))).toEqual(Array.from({ length: 4322 }, (_, i) => i + 1));
    expect(parseMigMinors(file).size).toBe(4322);
  });

  it('maps the guide’s example geometry (GPU 0, GI 1 with CIs 0 to 2) to nvidia-cap12 to 15', () => {
    // The guide: "the corresponding device nodes: /dev/nvidia-cap12, 13, 14 and 15 would be created".
    const m = parseMigMinors(file);
    expect([0, 1, 2].map((ci) => migCapNodes(m, 0, 1, ci))).toEqual([
      ['/dev/nvidia-caps/nvidia-cap12', '/dev/nvidia-caps/nvidia-cap13'],
      ['/dev/nvidia-caps/nvidia-cap12', '/dev/nvidia-caps/nvidia-cap14'],
      ['/dev/nvidia-caps/nvidia-cap12', '/dev/nvidia-caps/nvidia-cap15'],
    ]);
    // Keyed by the GPU's device minor: the last GPU minor the driver knows.
    expect(migCapNodes(m, 31, 14, 7)).toEqual(['/dev/nvidia-caps/nvidia-cap4314', '/dev/nvidia-caps/nvidia-cap4322']);
    expect(migCapNodes(m, 32, 0, 0)).toBeUndefined();
  });
});

// A capture of nvidia_gpu_exporter (internal/captures/): one banner-separated section per command.
function section(capture: string, title: string): string {
  const parts = capture.split(/^#{80}\n/m);
  const i = parts.findIndex((p) => p.startsWith(`# ${title}\n`));
  if (i < 0) throw new Error(`no section ${title}`);
  return parts[i + 1]!;
}

// What `--query-gpu=<fields> --format=csv,noheader,nounits` prints, projected from the capture's
// full `--format=csv` query: its columns by name, units dropped (what nounits does).
function project(csv: string, fields: readonly string[]): string {
  const [head, ...rows] = csv.trim().split('\n');
  const names = head!.split(', ').map((h) => h.replace(/ \[[^\]]+\]$/, ''));
  return rows
    .map((r) => {
      const cells = r.split(', ');
      return fields.map((f) => cells[names.indexOf(f)]!.replace(/ (MiB|W|MHz|%|us)$/, '')).join(', ');
    })
    .join('\n');
}

const FIELDS = [...NVIDIA_HEALTH_FIELDS, ...NVIDIA_OPTIONAL_HEALTH_FIELDS];

describe('nvidia-smi R590 on an H100 (real captures, nvidia_gpu_exporter)', () => {
  const plain = fixture('nvidia_gpu_exporter-linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt');
  const mig = fixture('nvidia_gpu_exporter-linux-x86_64__nvidia-h100-mig__590.48.01.txt');

  it('--help-query-gpu lists gpu_recovery_action and compute_cap, as the probes look for them', () => {
    const help = section(plain, 'capabilities :: help-query-gpu');
    expect(help).toMatch(/^"gpu_recovery_action"$/m);
    expect(help).toMatch(/^"compute_cap"$/m);
    for (const f of FIELDS) expect(help, f).toContain(`"${f}"`);
  });

  it('the health fields: recovery action None, ECC 0, retired pages [N/A] (not applicable), rows not remapped', () => {
    const csv = project(section(plain, 'load :: query-gpu (csv, what the exporter parses)'), FIELDS);
    const [h] = parseNvidiaHealth(csv, FIELDS);
    expect(h).toEqual({
      uuid: expect.stringMatching(/^GPU-/),
      memoryUsedMiB: 19818,
      eccUncorrected: 0,
      retiredPending: undefined,
      remapPending: false,
      remapFailure: false,
      recoveryAction: 'None',
      notApplicable: ['retired pages'],
      unreadable: [],
    });
  });

  it('in MIG mode the GPU reports remapped rows [N/A]: not applicable, never a failure', () => {
    const csv = project(section(mig, 'idle :: query-gpu (csv, what the exporter parses)'), FIELDS);
    const [h] = parseNvidiaHealth(csv, FIELDS);
    expect(h).toMatchObject({ eccUncorrected: 0, recoveryAction: 'None', remapPending: undefined, remapFailure: undefined });
    expect(h!.notApplicable).toEqual(['retired pages', 'remapped rows']);
  });

  it('-q: the Fabric section in R590’s wider key column, with CliqueId, ClusterUUID and Health', () => {
    const q = section(plain, 'idle :: query (-q)');
    expect(q).toMatch(/^ {8}ClusterUUID {36}: /m);
    const f = parseFabric(q);
    expect(f).toEqual([{ uuid: expect.stringMatching(/^GPU-/), state: 'Completed', status: 'Success' }]);
    expect(fabricProblem(f[0]!)).toBeUndefined();
  });

  it('-q of a GPU in MIG mode: its MIG Device subsections do not hide the GPU or its fabric', () => {
    const q = section(mig, 'idle :: query (-q)');
    expect(q.match(/^ {4}MIG Device$/gm)).toHaveLength(4);
    expect(parseFabric(q)).toEqual([{ uuid: expect.stringMatching(/^GPU-/), state: 'Completed', status: 'Success' }]);
  });

  it('-L with MIG devices, the MIG devices table and a process on one instance (R590 layout)', () => {
    const list = parseNvidiaList(section(mig, 'capabilities :: list (-L)'));
    const [devices] = [...list.values()];
    expect(devices!.map((d) => [d.name, d.device])).toEqual([
      ['3g.40gb', 0],
      ['2g.20gb', 1],
      ['1g.10gb', 2],
      ['1g.10gb', 3],
    ]);
    expect(new Set(devices!.map((d) => d.uuid)).size).toBe(4);
    const load = section(mig, 'load :: nvidia-smi (default table)');
    expect(parseMigTable(load).map((r) => [r.gpu, r.gi, r.ci, r.device, r.memoryTotalMiB])).toEqual([
      [0, 2, 0, 0, 40448],
      [0, 3, 0, 1, 20096],
      [0, 9, 0, 2, 9984],
      [0, 10, 0, 3, 9984],
    ]);
    // Three processes on GI 2; the other instances idle.
    const usage = parseMigUsage(load);
    expect(usage.find((u) => u.gi === 2)).toEqual({ gpu: 0, gi: 2, ci: 0, memoryUsedMiB: 11091, pids: [21180, 21181, 21198] });
    expect(usage.filter((u) => u.gi !== 2).map((u) => [u.gi, u.memoryUsedMiB, u.pids.length])).toEqual([
      [3, 17, 0],
      [9, 9, 0],
      [10, 9, 0],
    ]);
  });
});
