// Gathers a host's facts: the vendor's GPUs (tool output joined with sysfs by PCI bus id), NUMA
// nodes, their CPUs and memory, and SMT cores. Reads only; the planner decides. What each vendor
// needs is asked of its module (src/node/vendors/).
import { hostname as osHostname } from 'node:os';
import { InputError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { GPU_VENDORS, NONE, vendorFlag, vendorOfPci } from '../vendors/index.js';
import type { VendorModule } from '../vendors/types.js';
import { HostTree, normalizeBusId, pciAccelerators, readCores, readNumaNodes } from './sysfs.js';
import { which } from './tools.js';
import type { HostFacts, VendorChoice } from './types.js';

export async function detectHost(hostRoot: string, choice: VendorChoice, io: Pick<Io, 'env' | 'log'>): Promise<HostFacts> {
  const host = new HostTree(hostRoot);
  const warnings: string[] = [];
  const nodes = await readNumaNodes(host);
  if (!nodes[0]?.cpus.length) throw new InputError(`no online CPUs found under ${host.path('sys/devices/system')}`, 'check --host-root');
  const cores = await readCores(
    host,
    nodes.flatMap((n) => n.cpus),
  );
  const hostname = ((await host.read('proc/sys/kernel/hostname')) ?? (await host.read('etc/hostname')) ?? (hostRoot === '/' ? osHostname() : 'host'))
    .trim()
    .split('.')[0]!;

  const vendor = choice === 'auto' ? await autoVendor(host, io) : vendorFlag(choice);
  const gpus = await vendor.detect({ host, nodes, io, warnings });
  // A GPU vendor (one with tools) that lists no GPUs is not a CPU-only host.
  if (vendor.tools.length > 0 && gpus.length === 0)
    throw new InputError(
      `--vendor ${vendor.id}: ${vendor.tools[0]} reports no ${vendor.label} GPUs`,
      'check the driver (the tool runs but lists nothing), or use --vendor none for CPU-only agents',
    );
  // One bus id twice is two agents on one device, whatever the tool says.
  const seen = new Map<string, number>();
  for (const g of gpus) {
    const bus = normalizeBusId(g.busId);
    if (seen.has(bus))
      throw new InputError(
        `${vendor.tools[0]}: GPUs ${seen.get(bus)} and ${g.index} have the same bus id ${bus}: inconsistent output`,
        `run ${vendor.tools[0]} by hand; a driver in a bad state can list a GPU twice`,
      );
    seen.set(bus, g.index);
  }
  const sharedDevices = gpus.length ? await vendor.sharedDevices(host) : [];
  const groups = gpus.length ? await vendor.supplementaryGroups(host) : [];
  const services = gpus.length && vendor.hostServices ? await vendor.hostServices(host, io) : undefined;
  warnings.push(...(services?.warnings ?? []));
  return { hostname, vendor: vendor.id, gpus, nodes, cores, sharedDevices, groups, ...(services ? { services } : {}), warnings };
}

async function autoVendor(host: HostTree, io: Pick<Io, 'env' | 'log'>): Promise<VendorModule> {
  for (const v of GPU_VENDORS) for (const t of v.tools) if (await which(t, io.env)) return v;
  for (const d of await pciAccelerators(host)) {
    const v = vendorOfPci(d.vendor);
    if (v)
      throw new InputError(
        `${v.label} devices are on the PCI bus but ${v.tools.join(' / ')} is not on PATH`,
        `install the ${v.label} driver tools (or put them on PATH), or pass --vendor none for CPU-only agents`,
      );
  }
  return NONE;
}
