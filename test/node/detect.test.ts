// GPU discovery: the vendor tools' formats and the fixture hosts' sysfs trees.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAmdSmiList, parseKfdProperties } from '../../src/node/vendors/amd.js';
import { parseNpuSmiInfo, parseNpuSmiMapping } from '../../src/node/vendors/ascend.js';
import { detectHost } from '../../src/node/detect/index.js';
import { parseDeviceMinor, parseNvidiaHealth, parseNvidiaList, parseNvidiaQuery } from '../../src/node/vendors/nvidia.js';
import { normalizeBusId } from '../../src/node/detect/sysfs.js';
import { formatCpuList, parseCpuList } from '../../src/node/cpulist.js';
import { hostEnv, HOSTS, quietIo } from './helpers.js';

describe('formats', () => {
  it('reads and writes CPU lists', () => {
    expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('0-6:2')).toEqual([0, 2, 4, 6]);
    expect(parseCpuList('')).toEqual([]);
    expect(formatCpuList([11, 0, 1, 2, 3, 8, 10])).toBe('0-3,8,10-11');
  });

  it('normalises bus ids to the sysfs form', () => {
    expect(normalizeBusId('00000000:8D:00.0')).toBe('0000:8d:00.0');
    expect(normalizeBusId('00010000:E1:00.0')).toBe('10000:e1:00.0');
    expect(normalizeBusId('0001:00:00.0')).toBe('0001:00:00.0');
    expect(normalizeBusId('C1F4:00:00.0')).toBe('c1f4:00:00.0');
    expect(normalizeBusId('3:00.0')).toBe('0000:03:00.0');
    expect(normalizeBusId('0000:C1:00.0')).toBe('0000:c1:00.0');
    expect(normalizeBusId('8d:00.0')).toBe('0000:8d:00.0');
  });

  it('parses nvidia-smi CSV, -L with MIG devices, device minors and health', () => {
    const q = parseNvidiaQuery('0, GPU-aaa, NVIDIA H100 80GB HBM3, 00000000:8D:00.0, 81559\n1, GPU-bbb, NVIDIA A100, PCIe, 40GB, 00000000:0F:00.0, [N/A]\n');
    expect(q).toEqual([
      { index: 0, uuid: 'GPU-aaa', name: 'NVIDIA H100 80GB HBM3', busId: '00000000:8D:00.0', memoryMiB: 81559 },
      { index: 1, uuid: 'GPU-bbb', name: 'NVIDIA A100, PCIe, 40GB', busId: '00000000:0F:00.0', memoryMiB: undefined },
    ]);
    const skipped: string[] = [];
    expect(parseNvidiaQuery('WARNING: infoROM is corrupted at gpu 0000:8D:00.0\n0, GPU-aaa, H100, 00000000:8D:00.0, 81559\n', skipped)).toHaveLength(1);
    expect(skipped).toEqual(['WARNING: infoROM is corrupted at gpu 0000:8D:00.0']);
    const L = parseNvidiaList(
      'GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-x)\n  MIG 3g.20gb     Device  0: (UUID: MIG-a)\n  MIG 3g.20gb     Device  1: (UUID: MIG-b)\nGPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-y)\n',
    );
    expect(L.get('GPU-x')).toEqual([
      { name: '3g.20gb', device: 0, uuid: 'MIG-a' },
      { name: '3g.20gb', device: 1, uuid: 'MIG-b' },
    ]);
    expect(L.get('GPU-y')).toEqual([]);
    expect(parseDeviceMinor('Model: \t\t X\nDevice Minor: \t 3\n')).toBe(3);
    const fields = ['uuid', 'memory.used', 'ecc.errors.uncorrected.volatile.total', 'retired_pages.pending', 'remapped_rows.failure'];
    expect(parseNvidiaHealth('GPU-a, 3, 0, No, No\nGPU-b, 0, [N/A], [N/A], Yes\n', fields)).toEqual([
      {
        uuid: 'GPU-a',
        memoryUsedMiB: 3,
        eccUncorrected: 0,
        retiredPending: false,
        remapPending: undefined,
        remapFailure: false,
        notApplicable: [],
        unreadable: [],
      },
      {
        uuid: 'GPU-b',
        memoryUsedMiB: 0,
        eccUncorrected: undefined,
        retiredPending: undefined,
        remapPending: undefined,
        remapFailure: true,
        notApplicable: ['ecc', 'retired pages'],
        unreadable: [],
      },
    ]);
    // Any other bracketed value is a field nvidia-smi could not read, never "not applicable".
    expect(parseNvidiaHealth('GPU-c, 0, [Unknown Error], No, [GPU requires reset]\n', fields)[0]).toMatchObject({
      eccUncorrected: undefined,
      remapFailure: undefined,
      notApplicable: [],
      unreadable: [
        { field: 'ecc', value: '[Unknown Error]' },
        { field: 'remapped rows', value: '[GPU requires reset]' },
      ],
    });
  });

  it('parses amd-smi list as JSON and as text, and KFD topology nodes', () => {
    const json = parseAmdSmiList('[{"gpu": 0, "bdf": "0000:0b:00.0", "uuid": "u0", "kfd_id": 7, "node_id": 3, "partition_id": 0}]');
    const text = parseAmdSmiList(
      'GPU: 0\n    BDF: 0000:0b:00.0\n    UUID: u0\n    KFD_ID: 7\n    NODE_ID: 3\n    PARTITION_ID: 0\n\nGPU: 1\n    BDF: 0000:0c:00.0\n    UUID: u1\n',
    );
    expect(json).toEqual([{ index: 0, busId: '0000:0b:00.0', uuid: 'u0' }]);
    expect(
      parseAmdSmiList('WARNING: User is missing the following required groups: render, video\n[{"gpu": 1, "bdf": "0000:0c:00.0", "uuid": "u1"}]\n'),
    ).toEqual([{ index: 1, busId: '0000:0c:00.0', uuid: 'u1' }]);
    expect(text).toEqual([
      { index: 0, busId: '0000:0b:00.0', uuid: 'u0' },
      { index: 1, busId: '0000:0c:00.0', uuid: 'u1' },
    ]);
    expect(parseKfdProperties(2, 'simd_count 1216\nlocation_id 3072\ndomain 0\ndrm_render_minor 128\nunique_id 255\n')).toEqual({
      node: 2,
      busId: '0000:0c:00.0',
      uniqueId: 255n,
      renderMinor: 128,
    });
    expect(parseKfdProperties(0, 'cpu_cores_count 96\nsimd_count 0\n')).toBeUndefined();
  });

  it('reads npu-smi info without taking the process table for NPUs', () => {
    const info = parseNpuSmiInfo(
      [
        '| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|',
        '| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |',
        '+===========================+===============+====================================================+',
        '| 0     910B3               | OK            | 93.6        40                0    / 0             |',
        '| 0                         | 0000:C1:00.0  | 0           0    / 0          3161 / 65536         |',
        '+===========================+===============+====================================================+',
        '| 1     910B3               | Warning       | 91.1        39                0    / 0             |',
        '| 0                         | 0000:01:00.0  | 0           0    / 0          3160 / 65536         |',
        '+---------------------------+---------------+----------------------------------------------------+',
        '| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |',
        '+===========================+===============+====================================================+',
        '| 1       0                 | 2871311       | python3                  | 12345                   |',
        '| 7       0                 | 0000:01:00.0  | not an NPU               | 1                       |',
      ].join('\n'),
    );
    expect(info.chips.map((c) => [c.npu, c.chip, c.health, c.busId])).toEqual([
      [0, 0, 'OK', '0000:C1:00.0'],
      [1, 0, 'Warning', '0000:01:00.0'],
    ]);
    expect(info.processes).toEqual([{ npu: 1, chip: 0, pid: 2871311 }]);
    const map = parseNpuSmiMapping(
      '   NPU ID   Chip ID   Chip Logic ID   Chip Name\n   0   0   0   Ascend 910B3\n   0   1   -   Mcu\n   1   0   1   Ascend 910B3\n',
    );
    expect([...map]).toEqual([
      ['0:0', 0],
      ['1:0', 1],
    ]);
  });

  it('reads the physical chip id (what /dev/davinciN is numbered by) where npu-smi info -m prints it', async () => {
    const { parseNpuSmiPhysical } = await import('../../src/node/vendors/ascend.js');
    const text = [
      '        NPU ID                         Chip ID                        Chip Logic ID                  Chip Phy-ID                    Chip Name',
      '        4                              0                              0                              5                              Ascend 910B3',
      '        4                              1                              -                              -                              Mcu',
      '        5                              0                              1                              4                              Ascend 910B3',
    ].join('\n');
    expect([...parseNpuSmiPhysical(text)]).toEqual([
      ['4:0', 5],
      ['5:0', 4],
    ]);
    expect([...parseNpuSmiMapping(text)]).toEqual([
      ['4:0', 0],
      ['5:0', 1],
    ]);
    // Without the column (older drivers): none, and the logic id numbers the device.
    expect(parseNpuSmiPhysical('   NPU ID   Chip ID   Chip Logic ID   Chip Name\n   0   0   0   Ascend 910B3\n').size).toBe(0);
  });
});

describe('detectHost on fixture hosts', () => {
  it('dual-socket H100: UUIDs, NUMA from sysfs, device minors from /proc, SMT cores', async () => {
    const f = await detectHost(HOSTS.h100, 'auto', quietIo(hostEnv(HOSTS.h100)));
    expect(f.vendor).toBe('nvidia');
    expect(f.hostname).toBe('gpu-node-17');
    expect(f.gpus).toHaveLength(8);
    expect(f.gpus.map((g) => g.numaNode)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(f.gpus[2]!.devices).toEqual(['/dev/nvidia3']);
    expect(f.gpus[2]!.isolationId).toMatch(/^GPU-/);
    expect(f.nodes.map((n) => n.cpus.length)).toEqual([48, 48]);
    expect(f.cores).toHaveLength(48);
    expect(f.cores[0]).toEqual([0, 48]);
    expect(f.warnings).toEqual([]);
  });

  it('numa_node -1 means the one node', async () => {
    const f = await detectHost(HOSTS.l40s, 'nvidia', quietIo(hostEnv(HOSTS.l40s)));
    expect(f.gpus.map((g) => g.numaNode)).toEqual([0, 0]);
    expect(f.nodes).toHaveLength(1);
  });

  it('AMD: NUMA from sysfs (not amd-smi NODE_ID), ROCR ids from KFD unique_id, render nodes', async () => {
    const f = await detectHost(HOSTS.amd, 'auto', quietIo(hostEnv(HOSTS.amd)));
    expect(f.vendor).toBe('amd');
    const g0 = f.gpus.find((g) => g.index === 0)!;
    expect(g0.numaNode).toBe(1);
    expect(g0.isolationId).toMatch(/^GPU-[0-9a-f]{16}$/);
    expect(g0.devices[0]).toMatch(/^\/dev\/dri\/renderD1\d\d$/);
    expect(f.sharedDevices).toEqual([{ path: '/dev/kfd', required: true }]);
    expect(f.groups).toEqual(['render', 'video']);
    expect(new Set(f.gpus.map((g) => g.isolationId)).size).toBe(8);
  });

  it('Ascend: chips with logic ids, NUMA from sysfs, processes not counted as NPUs', async () => {
    const f = await detectHost(HOSTS.ascend, 'auto', quietIo(hostEnv(HOSTS.ascend)));
    expect(f.vendor).toBe('ascend');
    expect(f.gpus).toHaveLength(8);
    expect(f.gpus[0]!.numaNode).toBe(1);
    expect(f.gpus[1]!.numaNode).toBe(0);
    expect(f.gpus.map((g) => g.isolationId)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
  });

  it('MIG devices are listed under their GPU', async () => {
    const f = await detectHost(HOSTS.mig, 'auto', quietIo(hostEnv(HOSTS.mig)));
    expect(f.gpus.map((g) => g.mig.length)).toEqual([2, 2, 0, 0]);
  });

  it('CPU-only host: no vendor', async () => {
    const f = await detectHost(HOSTS.cpu, 'auto', quietIo(hostEnv(HOSTS.cpu)));
    expect(f.vendor).toBe('none');
    expect(f.gpus).toEqual([]);
    expect(f.nodes).toHaveLength(2);
  });

  it('a GPU vendor whose tool is missing is exit 2, naming the tool', async () => {
    await expect(detectHost(HOSTS.cpu, 'nvidia', quietIo(hostEnv(HOSTS.cpu)))).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('nvidia-smi is not on PATH'),
    });
  });

  it('auto-detection notices GPUs on the PCI bus without their tool', async () => {
    await expect(detectHost(HOSTS.h100, 'auto', quietIo({ PATH: '/usr/bin:/bin' }))).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('NVIDIA devices are on the PCI bus'),
    });
  });

  it('a kernel without NUMA nodes in sysfs is one node with /proc/meminfo', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bkci-host-'));
    const put = (p: string, c: string) => {
      mkdirSync(dirname(join(root, p)), { recursive: true });
      writeFileSync(join(root, p), c);
    };
    put('sys/devices/system/cpu/online', '0-3\n');
    put('proc/meminfo', 'MemTotal:       16384000 kB\n');
    const f = await detectHost(root, 'none', quietIo({ PATH: '/usr/bin:/bin' }));
    expect(f.nodes).toEqual([{ id: 0, cpus: [0, 1, 2, 3], memBytes: 16384000 * 1024 }]);
    expect(f.cores).toEqual([[0], [1], [2], [3]]);
  });
});

describe('other forms of the vendor tools', () => {
  it('reads amd-smi static --json and rocm-smi --showbus in text', async () => {
    const { parseAmdSmiStatic, parseRocmSmiBus } = await import('../../src/node/vendors/amd.js');
    expect(parseAmdSmiStatic('[{"gpu": 0, "asic": {"market_name": "MI300X"}, "bus": {"bdf": "0000:0c:00.0", "max_pcie_width": 16}}]')).toEqual([
      { index: 0, busId: '0000:0c:00.0' },
    ]);
    expect(
      parseRocmSmiBus(
        '============ ROCm System Management Interface ============\nGPU[0]\t\t: PCI Bus: 0000:0C:00.0\nGPU[1]\t\t: PCI Bus: 0000:22:00.0\n=== End of ROCm SMI Log ===\n',
      ),
    ).toEqual([
      { index: 0, busId: '0000:0C:00.0' },
      { index: 1, busId: '0000:22:00.0' },
    ]);
    expect(parseRocmSmiBus('{"card0": {"PCI Bus": "0000:0C:00.0"}}')).toEqual([{ index: 0, busId: '0000:0C:00.0' }]);
  });

  it('falls back to rocm-smi when amd-smi is absent, and tolerates an nvidia-smi without -L', async () => {
    const { cpSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const host = mkdtempSync(join(tmpdir(), 'bkci-host-'));
    cpSync(HOSTS.amd, host, { recursive: true });
    rmSync(join(host, 'bin/amd-smi'));
    writeFileSync(
      join(host, 'bin/rocm-smi'),
      '#!/bin/sh\n[ "$1" = "--showbus" ] || exit 2\n[ "$2" = "--json" ] && exit 1\nprintf "GPU[0]\\t\\t: PCI Bus: 0000:9F:00.0\\nGPU[1]\\t\\t: PCI Bus: 0000:0C:00.0\\n"\n',
      { mode: 0o755 },
    );
    const f = await detectHost(host, 'auto', quietIo(hostEnv(host)));
    expect(f.vendor).toBe('amd');
    expect(f.gpus.map((g) => [g.index, g.numaNode])).toEqual([
      [0, 1],
      [1, 0],
    ]);
    const nv = mkdtempSync(join(tmpdir(), 'bkci-host-'));
    cpSync(HOSTS.l40s, nv, { recursive: true });
    writeFileSync(join(nv, 'out/nvidia-L.txt'), '');
    writeFileSync(
      join(nv, 'bin/nvidia-smi'),
      `#!/bin/sh\n[ "$1" = "-L" ] && { echo "unsupported" >&2; exit 2; }\nexec ${join(HOSTS.l40s, 'bin/nvidia-smi')} "$@"\n`,
      { mode: 0o755 },
    );
    const g = await detectHost(nv, 'nvidia', quietIo(hostEnv(nv)));
    expect(g.gpus).toHaveLength(2);
    expect(g.warnings).toContain('nvidia-smi -L failed; assuming no MIG devices');
  });
});

describe('NUMA placement without a usable numa_node', () => {
  it('places a GPU by its local_cpulist when numa_node is -1 or names a node without CPUs', async () => {
    const { cpSync, mkdtempSync, writeFileSync, mkdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const host = mkdtempSync(join(tmpdir(), 'bkci-host-'));
    cpSync(HOSTS.h100, host, { recursive: true });
    writeFileSync(join(host, 'sys/bus/pci/devices/0000:ab:00.0/numa_node'), '-1\n');
    // A memory-only node 2 (like a GPU's own memory exposed as a NUMA node).
    mkdirSync(join(host, 'sys/devices/system/node/node2'), { recursive: true });
    writeFileSync(join(host, 'sys/devices/system/node/node2/cpulist'), '\n');
    writeFileSync(join(host, 'sys/devices/system/node/node2/meminfo'), 'Node 2 MemTotal:       100000000 kB\n');
    writeFileSync(join(host, 'sys/bus/pci/devices/0000:18:00.0/numa_node'), '2\n');
    const f = await detectHost(host, 'nvidia', quietIo(hostEnv(host)));
    expect(f.nodes.map((n) => n.id)).toEqual([0, 1]);
    expect(f.gpus.map((g) => g.numaNode)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(f.warnings).toEqual([]);
    // No NUMA information at all on a two-node host: the first node, with a warning.
    writeFileSync(join(host, 'sys/bus/pci/devices/0000:ab:00.0/local_cpulist'), '0-95\n');
    const g = await detectHost(host, 'nvidia', quietIo(hostEnv(host)));
    expect(g.gpus[5]!.numaNode).toBe(0);
    expect(g.warnings.join('\n')).toMatch(/GPU 5 \(0000:ab:00\.0\): no usable NUMA node/);
  });
});
