// Reading the host's /sys and /proc, under a root prefix (`--host-root`) so tests read fixture trees.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCpuList } from '../cpulist.js';
import type { NumaNode } from './types.js';

export class HostTree {
  constructor(readonly root: string) {}

  path(p: string): string {
    return join(this.root, p);
  }

  // A text file's content (at most 4 MiB: sysfs and procfs files are small), or undefined.
  async read(p: string): Promise<string | undefined> {
    let fh;
    try {
      fh = await open(this.path(p), 'r');
      const chunks: Buffer[] = [];
      let len = 0;
      while (len < 4 * 1024 * 1024) {
        const chunk = Buffer.alloc(65536);
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        chunks.push(chunk.subarray(0, bytesRead));
        len += bytesRead;
      }
      return Buffer.concat(chunks).toString('utf8');
    } catch {
      return undefined;
    } finally {
      await fh?.close();
    }
  }

  // The group name owning a file (a device node), from the tree's /etc/group.
  async groupOf(p: string): Promise<string | undefined> {
    try {
      const gid = (await stat(this.path(p))).gid;
      const groups = (await this.read('etc/group')) ?? '';
      for (const line of groups.split('\n')) {
        const f = line.split(':');
        if (f.length >= 3 && Number(f[2]) === gid && f[0]) return f[0];
      }
      return undefined;
    } catch {
      return undefined;
    }
  }

  async exists(p: string): Promise<boolean> {
    try {
      await stat(this.path(p));
      return true;
    } catch {
      return false;
    }
  }

  async list(p: string): Promise<string[]> {
    try {
      return (await readdir(this.path(p))).sort();
    } catch {
      return [];
    }
  }
}

// sysfs PCI address from a tool's bus id: `00000000:8D:00.0` → `0000:8d:00.0`. Domains keep their
// value, at least four digits: VMD domains are `10000` in sysfs (`00010000` from nvidia-smi).
export function normalizeBusId(id: string): string {
  const m = /^(?:([0-9a-fA-F]+):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/.exec(id.trim());
  if (!m) return id.trim().toLowerCase();
  const domain = (m[1] ?? '0').replace(/^0+(?=[0-9a-fA-F]{4})/, '').padStart(4, '0');
  return `${domain}:${m[2]!.padStart(2, '0')}:${m[3]!.padStart(2, '0')}.${m[4]}`.toLowerCase();
}

// NUMA nodes with their online CPUs and memory. A kernel without NUMA nodes in sysfs is one node 0
// with every online CPU and /proc/meminfo's total.
export async function readNumaNodes(host: HostTree): Promise<NumaNode[]> {
  const onlineText = await host.read('sys/devices/system/cpu/online');
  const online = onlineText ? new Set(parseCpuList(onlineText, host.path('sys/devices/system/cpu/online'))) : undefined;
  const nodes: NumaNode[] = [];
  for (const d of await host.list('sys/devices/system/node')) {
    const m = /^node(\d{1,5})$/.exec(d);
    if (!m) continue;
    const cpus = parseCpuList((await host.read(`sys/devices/system/node/${d}/cpulist`)) ?? '', host.path(`sys/devices/system/node/${d}/cpulist`)).filter(
      (c) => !online || online.has(c),
    );
    const meminfo = (await host.read(`sys/devices/system/node/${d}/meminfo`)) ?? '';
    const kb = /MemTotal:\s+(\d{1,15})\s*kB/.exec(meminfo);
    nodes.push({ id: Number(m[1]), cpus, memBytes: kb ? Number(kb[1]) * 1024 : 0 });
  }
  // Memory-only nodes (CXL, HBM without CPUs) take no agents.
  const withCpus = nodes.filter((n) => n.cpus.length > 0).sort((a, b) => a.id - b.id);
  if (withCpus.length) return withCpus;
  const meminfo = (await host.read('proc/meminfo')) ?? '';
  const kb = /MemTotal:\s+(\d+)\s*kB/.exec(meminfo);
  let cpus = online ? [...online].sort((a, b) => a - b) : [];
  if (!cpus.length)
    cpus = (await host.list('sys/devices/system/cpu'))
      .map((d) => /^cpu(\d{1,5})$/.exec(d)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  return [{ id: 0, cpus, memBytes: kb ? Number(kb[1]) * 1024 : 0 }];
}

// Physical cores: each online CPU grouped with its SMT siblings.
export async function readCores(host: HostTree, cpus: number[]): Promise<number[][]> {
  const seen = new Set<number>();
  const cores: number[][] = [];
  const all = new Set(cpus);
  for (const c of [...cpus].sort((a, b) => a - b)) {
    if (seen.has(c)) continue;
    const file = [`sys/devices/system/cpu/cpu${c}/topology/thread_siblings_list`, `sys/devices/system/cpu/cpu${c}/topology/core_cpus_list`];
    let text = await host.read(file[0]!);
    let where = host.path(file[0]!);
    if (text === undefined) {
      text = await host.read(file[1]!);
      where = host.path(file[1]!);
    }
    const group = (text ? parseCpuList(text, where) : [c]).filter((x) => all.has(x));
    if (!group.includes(c)) group.push(c);
    for (const x of group) seen.add(x);
    cores.push(group.sort((a, b) => a - b));
  }
  return cores;
}

// The NUMA node of a PCI device. Without a usable `numa_node` (-1, missing, or a node with no CPUs,
// such as a GPU's own memory node), the node whose CPUs the device's `local_cpulist` names; else the
// first node (one node: -1 simply means that one).
export async function pciNumaNode(host: HostTree, busId: string, nodes: NumaNode[]): Promise<{ node: number; known: boolean }> {
  const text = await host.read(`sys/bus/pci/devices/${busId}/numa_node`);
  const n = text === undefined ? NaN : Number(text.trim());
  if (Number.isInteger(n) && nodes.some((x) => x.id === n)) return { node: n, known: true };
  const local = await host.read(`sys/bus/pci/devices/${busId}/local_cpulist`);
  if (local && nodes.length > 1) {
    const cpus = new Set(parseCpuList(local, host.path(`sys/bus/pci/devices/${busId}/local_cpulist`)));
    const best = nodes.map((x) => ({ id: x.id, overlap: x.cpus.filter((c) => cpus.has(c)).length })).sort((a, b) => b.overlap - a.overlap)[0];
    // Only a clear answer: the local CPUs lie on one node.
    if (best && best.overlap > 0 && best.overlap === cpus.size) return { node: best.id, known: true };
  }
  return { node: nodes[0]?.id ?? 0, known: nodes.length <= 1 };
}

export interface PciDevice {
  busId: string;
  vendor: string;
  class: string;
}

// PCI display/3D/processing-accelerator devices, for noticing GPUs whose vendor tool is missing.
export async function pciAccelerators(host: HostTree): Promise<PciDevice[]> {
  const out: PciDevice[] = [];
  for (const d of await host.list('sys/bus/pci/devices')) {
    const vendor = (await host.read(`sys/bus/pci/devices/${d}/vendor`))?.trim() ?? '';
    const cls = (await host.read(`sys/bus/pci/devices/${d}/class`))?.trim() ?? '';
    // 0x03xxxx display controllers (VGA 0x0300, 3D 0x0302), 0x1200 processing accelerators (NPUs).
    // NVSwitches are bridges (0x0680) and are not GPUs.
    if (/^0x03/.test(cls) || /^0x1200/.test(cls)) out.push({ busId: d, vendor, class: cls });
  }
  return out;
}
