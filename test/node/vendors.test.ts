// The vendor registry: one module per vendor behind one interface; nothing outside
// src/node/vendors names a vendor; what each module gives the planner, units and health check.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GPU_VENDORS, NONE, vendorFlag, vendorIds, vendorOf, vendorOfPci } from '../../src/node/vendors/index.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS } from './helpers.js';

const TOKEN = 'bkat_Vendor9secretAgentToken1';
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

async function stage(host: string, extra: string[] = []) {
  const root = tmp('bkci-root-');
  const r = await runBkci(['node', 'setup', '--queue', 'q', '--host-root', host, '--root', root, '--agent-bin', '/bin/sh', ...extra], {
    env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: TOKEN }),
  });
  expect(r.code, r.stderr).toBe(0);
  const read = (p: string) => readFileSync(join(root, p), 'utf8');
  return { root, read, dropIn: (i: string) => read(`etc/systemd/system/bkci-agent@${i}.service.d/50-bkci.conf`) };
}

describe('the registry', () => {
  it('knows each vendor once, by id and PCI vendor id; an unknown --vendor is exit 2 listing them', async () => {
    expect(vendorIds()).toEqual(['nvidia', 'amd', 'ascend', 'none']);
    for (const v of GPU_VENDORS) {
      expect(vendorOf(v.id)).toBe(v);
      expect(v.tools.length).toBeGreaterThan(0);
      for (const pci of v.pciVendors) expect(vendorOfPci(pci)).toBe(v);
    }
    expect(vendorOf('none')).toBe(NONE);
    expect(() => vendorFlag('intel')).toThrow(/--vendor "intel": not a vendor bkci knows/);
    const r = await runBkci(['node', 'setup', '--queue', 'q', '--vendor', 'intel', '--root', tmp('bkci-root-'), '--host-root', HOSTS.cpu], {
      env: hostEnv(HOSTS.cpu, { BUILDKITE_AGENT_TOKEN: TOKEN }),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/hint: use one of auto, nvidia, amd, ascend, none/);
  });

  it('no code of the node commands outside src/node/vendors decides by vendor name', () => {
    const root = join(import.meta.dirname, '../../src');
    // The node domain and its CLI wiring (the pipeline generator has vendors of its own).
    const offenders = [...sources(join(root, 'node')), ...sources(join(root, 'cli')).filter((f) => /\/cli\/node/.test(f))]
      .filter((f) => !f.includes('/node/vendors/'))
      .flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .map((line, i) => ({ f, i, line }))
          .filter(({ line }) => /vendor\w*\s*[!=]==|['"](?:nvidia|amd|ascend)['"]|NVIDIA_|ROCR_|ASCEND_RT/.test(line) && !line.trim().startsWith('//')),
      )
      .map(({ f, i, line }) => `${f.slice(root.length)}:${i + 1}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });

  it('each module answers for its vendor: isolation variables and docker arguments', () => {
    const gpu = (id: string, uuid?: string) => ({
      gpu: { vendor: 'x', index: 0, isolationId: id, uuid, name: 'G', busId: '0000:01:00.0', numaNode: 0, devices: [], mig: [] },
      id,
    });
    const nv = vendorOf('nvidia')!;
    expect(nv.isolationEnv([gpu('GPU-a', 'GPU-a'), gpu('GPU-b', 'GPU-b')])).toEqual({
      NVIDIA_VISIBLE_DEVICES: 'GPU-a,GPU-b',
      CUDA_VISIBLE_DEVICES: 'GPU-a,GPU-b',
      BKCI_GPU_UUIDS: 'GPU-a,GPU-b',
    });
    // The quoted form, so docker does not split the list at the comma.
    expect(nv.dockerArgs([gpu('GPU-a'), gpu('GPU-b')], [], [])).toEqual(['--gpus', '"device=GPU-a,GPU-b"']);
    // A MIG slot: its own instance's capability nodes only (none known: none allowed, never every cap).
    expect(nv.extraDeviceAllow([gpu('MIG-a')], true)).toEqual([]);
    const migSlot = gpu('MIG-a', 'GPU-p');
    migSlot.gpu.mig = [{ uuid: 'MIG-a', name: '3g.20gb', gi: 1, ci: 0, caps: ['/dev/nvidia-caps/nvidia-cap12', '/dev/nvidia-caps/nvidia-cap13'] }] as never;
    expect(nv.extraDeviceAllow([migSlot], true)).toEqual(['/dev/nvidia-caps/nvidia-cap12 r', '/dev/nvidia-caps/nvidia-cap13 r']);
    expect(nv.extraDeviceAllow([gpu('GPU-a')], false)).toEqual([]);
    const amd = vendorOf('amd')!;
    expect(amd.isolationEnv([gpu('GPU-1'), gpu('GPU-2')])).toEqual({ ROCR_VISIBLE_DEVICES: 'GPU-1,GPU-2', HIP_VISIBLE_DEVICES: '0,1' });
    expect(amd.dockerArgs([gpu('GPU-1')], ['/dev/dri/renderD128', '/dev/kfd'], ['render', 'video'])).toEqual([
      '--device',
      '/dev/dri/renderD128',
      '--device',
      '/dev/kfd',
      '--group-add',
      'render',
      '--group-add',
      'video',
    ]);
    expect(vendorOf('ascend')!.isolationEnv([gpu('3'), gpu('5')])).toEqual({ ASCEND_RT_VISIBLE_DEVICES: '3,5' });
    for (const v of [...GPU_VENDORS, NONE]) expect(v.isolationEnv([])).toEqual({});
  });
});

describe('device nodes: required versus optional', () => {
  it('NVIDIA: nvidiactl and the GPU are required; uvm is allowed by class and modeset by path, never required', async () => {
    const s = await stage(HOSTS.h100);
    const dropIn = s.dropIn('gpu2');
    expect(dropIn).toMatch(/^DeviceAllow=\/dev\/nvidia3 rw$/m);
    expect(dropIn).toMatch(/^DeviceAllow=\/dev\/nvidiactl rw$/m);
    expect(dropIn).toMatch(/^DeviceAllow=char-nvidia-uvm rw$/m);
    expect(dropIn).toMatch(/^DeviceAllow=\/dev\/nvidia-modeset rw$/m);
    expect(dropIn).not.toMatch(/nvidia-uvm-tools/);
    expect(s.read('etc/buildkite-agent/bkci/agents/gpu2.env')).toMatch(/^BKCI_DEVICES=\/dev\/nvidia3,\/dev\/nvidiactl$/m);
  });

  it('a headless host without nvidia-uvm and nvidia-modeset: the health gate passes', async () => {
    const host = tmp('bkci-host-');
    cpSync(HOSTS.h100, host, { recursive: true });
    for (const d of ['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia-modeset']) rmSync(join(host, 'dev', d));
    const s = await stage(host);
    const r = await runBkci(['node', 'check', 'gpu0', '--root', s.root, '--host-root', host, '--json'], { env: hostEnv(host) });
    expect(r.code, r.stdout).toBe(0);
    rmSync(join(host, 'dev/nvidiactl'));
    const bad = await runBkci(['node', 'check', 'gpu0', '--root', s.root, '--host-root', host, '--json'], { env: hostEnv(host) });
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).items.find((i: { check: string }) => i.check === 'devices').detail).toBe('missing device node: /dev/nvidiactl');
  });

  it('AMD agents get the render and video groups; Ascend agents the group that owns /dev/davinci*', async () => {
    const a = await stage(HOSTS.amd);
    expect(a.dropIn('gpu0')).toMatch(/^SupplementaryGroups=render video$/m);
    // Only the groups the host has: systemd refuses to start a unit naming a group that does not
    // exist (a distribution without `render`); none of them: no SupplementaryGroups= line.
    for (const [group, want] of [
      ['root:x:0:\nvideo:x:44:\n', /^SupplementaryGroups=video$/m],
      ['root:x:0:\nrender:x:110:\nvideo:x:44:\n', /^SupplementaryGroups=render video$/m],
    ] as const) {
      const amdHost = tmp('bkci-host-');
      cpSync(HOSTS.amd, amdHost, { recursive: true });
      mkdirSync(join(amdHost, 'etc'), { recursive: true });
      writeFileSync(join(amdHost, 'etc/group'), group);
      expect((await stage(amdHost)).dropIn('gpu0')).toMatch(want);
    }
    const bare = tmp('bkci-host-');
    cpSync(HOSTS.amd, bare, { recursive: true });
    mkdirSync(join(bare, 'etc'), { recursive: true });
    writeFileSync(join(bare, 'etc/group'), 'root:x:0:\n');
    expect((await stage(bare)).dropIn('gpu0')).not.toMatch(/SupplementaryGroups/);
    const host = tmp('bkci-host-');
    cpSync(HOSTS.ascend, host, { recursive: true });
    const gid = statSync(join(host, 'dev/davinci0')).gid;
    mkdirSync(join(host, 'etc'), { recursive: true });
    writeFileSync(join(host, 'etc/group'), `root:x:${gid === 0 ? 1 : 0}:\nHwRun:x:${gid}:\n`, { flag: 'w' });
    const s = await stage(host);
    expect(s.dropIn('gpu0')).toMatch(/^SupplementaryGroups=HwRun$/m);
    // CPU-only agents need no device group.
    expect((await stage(HOSTS.cpu)).dropIn('cpu0')).not.toMatch(/SupplementaryGroups/);
  });
});

describe('Ascend device nodes by physical id', () => {
  it('/dev/davinci<N> is the chip physical id from npu-smi info -m; ASCEND_RT_VISIBLE_DEVICES stays the logic id', async () => {
    const s = await stage(HOSTS.ascend);
    expect(s.dropIn('gpu6')).toMatch(/^DeviceAllow=\/dev\/davinci7 rw$/m);
    expect(s.dropIn('gpu6')).not.toMatch(/davinci6 /);
    expect(s.read('etc/buildkite-agent/bkci/agents/gpu6.env')).toMatch(/^ASCEND_RT_VISIBLE_DEVICES=6$/m);
    expect(s.dropIn('gpu1')).toMatch(/^DeviceAllow=\/dev\/davinci1 rw$/m);
  });
});
