// A fleet queue on a systemd host: queue -> setup options, plan -> floor violations (plans made from
// the fixture hosts, as test/node/plan.test.ts makes them), and the doctor's model/count items.
import { describe, expect, it } from 'vitest';
import { parseFleet } from '../../src/fleet/load.js';
import { checkFloors, checkVendor, fleetDoctorItems, floorViolations, normaliseProduct, queueSetup } from '../../src/fleet/node.js';
import { detectHost } from '../../src/node/detect/index.js';
import { planAgents } from '../../src/node/plan.js';
import { hostEnv, HOSTS, quietIo, setupOptions } from '../node/helpers.js';

const GiB = 1024 ** 3;
const FLEET = `
queues:
  h100: {vendor: nvidia, gpus: 1, gpu-product: NVIDIA-H100-80GB-HBM3, cpus: 12, memory: 200G, tags: {cuda: "12"}}
  h100-big: {vendor: nvidia, gpus: 1, cpus: 16, memory: 128G}
  h100-pair: {vendor: nvidia, gpus: 2, cpus: 16, memory: 128G}
  h100-fat: {vendor: nvidia, gpus: 1, cpus: 8, memory: 400G}
  trio: {vendor: nvidia, gpus: 3}
  mi300: {vendor: amd, gpus: 1}
  upload: {vendor: none, cpus: 2, memory: 4G}
`;
const fleet = parseFleet(FLEET, 'fleet.yaml');
const q = (name: string) => fleet.queues.get(name)!;
const facts = (host: string) => detectHost(host, 'auto', quietIo(hostEnv(host)));
const opts = setupOptions;
const usage = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect((err as { exitCode?: number }).exitCode).toBe(2);
    return `${(err as Error).message}\n${(err as { hint?: string }).hint ?? ''}`;
  }
  throw new Error('expected a usage error');
};

describe('queueSetup: the queue as setup options', () => {
  it('takes GPUs per agent and tags from the queue; detects for GPU queues, none for CPU-only ones', () => {
    expect(queueSetup(q('h100-pair'), { tags: [] }, 'fleet.yaml')).toEqual({ queue: 'h100-pair', detect: 'auto', gpusPerAgent: 2, tags: [] });
    expect(queueSetup(q('h100'), { tags: [['team', 'ml']] }, 'fleet.yaml').tags).toEqual([
      ['cuda', '12'],
      ['team', 'ml'],
    ]);
    expect(queueSetup(q('upload'), { tags: [] }, 'fleet.yaml')).toMatchObject({ detect: 'none', gpusPerAgent: 1 });
  });

  it('accepts flags that agree with the fleet', () => {
    expect(queueSetup(q('h100-pair'), { gpusPerAgent: 2, vendor: 'nvidia', tags: [['cuda', '12']] }, 'f').gpusPerAgent).toBe(2);
    expect(queueSetup(q('h100'), { vendor: 'auto', tags: [['cuda', '12']] }, 'f').tags).toEqual([['cuda', '12']]);
  });

  it('refuses flags that contradict the fleet, naming both', () => {
    expect(usage(() => queueSetup(q('h100'), { gpusPerAgent: 2, tags: [] }, 'fleet.yaml'))).toMatch(
      /--gpus-per-agent 2 contradicts the fleet: fleet.yaml: queues.h100.gpus is 1/,
    );
    expect(usage(() => queueSetup(q('upload'), { gpusPerAgent: 1, tags: [] }, 'fleet.yaml'))).toMatch(/queue upload is CPU-only/);
    expect(usage(() => queueSetup(q('h100'), { vendor: 'amd', tags: [] }, 'fleet.yaml'))).toMatch(/--vendor amd contradicts .*queues.h100.vendor is nvidia/);
    expect(usage(() => queueSetup(q('h100'), { tags: [['cuda', '11']] }, 'fleet.yaml'))).toMatch(/--tags cuda=11 .*queues.h100.tags.cuda is "12"/);
    expect(usage(() => queueSetup(q('h100-pair'), { mig: true, tags: [] }, 'fleet.yaml'))).toMatch(/--mig .*gpus is 2/);
  });
});

describe('checkVendor', () => {
  it('passes the queue vendor and CPU-only queues anywhere; names both otherwise', () => {
    checkVendor(q('h100'), 'nvidia', 'f');
    checkVendor(q('upload'), 'nvidia', 'f');
    expect(usage(() => checkVendor(q('h100'), 'amd', 'fleet.yaml'))).toMatch(/queue h100 wants nvidia GPUs \(fleet.yaml\), but this host's GPUs are amd/);
    expect(usage(() => checkVendor(q('mi300'), 'none', 'fleet.yaml'))).toMatch(/queue mi300 wants amd GPUs .* has no GPUs/);
  });
});

describe('floors against plans of the fixture hosts', () => {
  it('the 8xH100 host (96 CPUs, 2 nodes) gives 12 CPUs per 1-GPU agent: cpus 12 passes, 16 fails on every agent', async () => {
    const f = await facts(HOSTS.h100);
    const agents = planAgents(f, opts());
    expect(agents.every((a) => a.cpuCount === 12)).toBe(true);
    expect(floorViolations(q('h100'), agents)).toEqual([]);
    const v = floorViolations(q('h100-big'), agents);
    expect(v).toHaveLength(8);
    expect(v[0]).toEqual({ agent: agents[0]!.name, resource: 'cpus', got: 12, floor: 16 });
    const msg = usage(() => checkFloors(q('h100-big'), agents, { file: 'fleet.yaml', cpuReserve: 0, memoryReserve: 4 * GiB, agents: 1 }));
    expect(msg).toContain(`${agents[0]!.name}: 12 CPUs, the floor is 16 CPUs (queues.h100-big.cpus)`);
    expect(msg).toMatch(/more GPUs per agent: queues.h100-big.gpus, now 1/);
    expect(msg).not.toMatch(/--cpu-reserve/);
    // Two GPUs per agent: half the agents, twice the CPUs each, and the floor is met.
    expect(floorViolations(q('h100-pair'), planAgents(f, opts({ gpusPerAgent: 2 })))).toEqual([]);
  });

  it('a CPU reserve can push agents under the floor, and the advice names it', async () => {
    const f = await facts(HOSTS.h100);
    const agents = planAgents(f, opts({ cpuReserve: 8 }));
    const msg = usage(() => checkFloors(q('h100'), agents, { file: 'fleet.yaml', cpuReserve: 8, memoryReserve: 4 * GiB, agents: 1 }));
    expect(msg).toMatch(/8 agents of 8 would get less/);
    expect(msg).toMatch(/less --cpu-reserve \(now 8\)/);
  });

  it('memory floors: the agent, what it got and the floor; less --memory-reserve in the advice', async () => {
    const f = await facts(HOSTS.h100);
    const agents = planAgents(f, opts());
    const v = floorViolations(q('h100-fat'), agents);
    expect(v.length).toBe(agents.length);
    expect(v.every((x) => x.resource === 'memory' && x.got < 400 * GiB && x.floor === 400 * GiB)).toBe(true);
    const msg = usage(() => checkFloors(q('h100-fat'), agents, { file: 'fleet.yaml', cpuReserve: 0, memoryReserve: 4 * GiB, agents: 1 }));
    expect(msg).toMatch(/GiB, the floor is 400 GiB \(queues.h100-fat.memory\)/);
    expect(msg).toMatch(/less --memory-reserve \(now 4.0 GiB\)/);
  });

  it('CPU-only agents: more agents, smaller shares; the advice is fewer agents', async () => {
    const f = await facts(HOSTS.cpu);
    // 64 CPUs on two nodes: 2 agents get 32 each; 40 agents get 1 or 2 (20 per node of 32 CPUs).
    expect(floorViolations(q('upload'), planAgents(f, opts({ agents: 2 })))).toEqual([]);
    const many = planAgents(f, opts({ agents: 40 }));
    const v = floorViolations(q('upload'), many);
    expect(v.length).toBe(many.filter((a) => a.cpuCount < 2).length);
    expect(v.length).toBeGreaterThan(0);
    expect(v.every((x) => x.resource === 'cpus' && x.got === 1 && x.floor === 2)).toBe(true);
    expect(usage(() => checkFloors(q('upload'), many, { file: 'f', cpuReserve: 0, memoryReserve: 0, agents: 40 }))).toMatch(
      /fewer agents \(--agents, now 40\)/,
    );
    expect(
      usage(() => checkFloors(q('upload'), [{ name: 'x-cpu0', cpuCount: 1, memoryMax: GiB }], { file: 'f', cpuReserve: 0, memoryReserve: 0, agents: 1 })),
    ).toMatch(/x-cpu0: 1 CPU, the floor is 2 CPUs[\s\S]*x-cpu0: 1.0 GiB, the floor is 4.0 GiB/);
  });
});

describe('doctor items', () => {
  it('normalises GPU model names: case, spaces, dashes, underscores', () => {
    expect(normaliseProduct('NVIDIA H100 80GB HBM3')).toBe(normaliseProduct('NVIDIA-H100-80GB-HBM3'));
    expect(normaliseProduct('NVIDIA A100-SXM4-80GB')).toBe(normaliseProduct('nvidia_a100_sxm4_80gb'));
    expect(normaliseProduct('NVIDIA H100 80GB HBM3')).not.toBe(normaliseProduct('NVIDIA H100 PCIe'));
  });

  it('the fixture hosts against the h100 queue', async () => {
    const items = async (host: string, queue: string) => {
      const f = await facts(host);
      return fleetDoctorItems(q(queue), { vendor: f.vendor, gpuNames: f.gpus.map((g) => g.name) }, 'fleet.yaml');
    };
    const status = (list: { check: string; status: string }[]) => Object.fromEntries(list.map((i) => [i.check, i.status]));
    expect(status(await items(HOSTS.h100, 'h100'))).toEqual({ 'fleet vendor': 'ok', 'fleet gpu model': 'ok', 'fleet gpu count': 'ok' });
    const a100 = await items(HOSTS.mig, 'h100');
    expect(status(a100)['fleet gpu model']).toBe('fail');
    expect(a100.find((i) => i.check === 'fleet gpu model')!.detail).toMatch(/4 of 4 GPUs are "NVIDIA A100-SXM4-40GB"/);
    expect(status(await items(HOSTS.h100, 'trio'))).toMatchObject({ 'fleet gpu model': 'skip', 'fleet gpu count': 'fail' });
    expect((await items(HOSTS.h100, 'trio')).find((i) => i.check === 'fleet gpu count')!.detail).toMatch(/8 GPUs is not a whole number of 3-GPU agents/);
    expect(status(await items(HOSTS.amd, 'h100'))).toEqual({ 'fleet vendor': 'fail' });
    expect(status(await items(HOSTS.cpu, 'mi300'))).toEqual({ 'fleet vendor': 'fail' });
    expect(status(await items(HOSTS.h100, 'upload'))).toEqual({ 'fleet gpus': 'skip' });
  });

  it('mixed models: each other model named with its count', () => {
    const out = fleetDoctorItems(q('h100'), { vendor: 'nvidia', gpuNames: ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 PCIe', 'NVIDIA H100 80GB HBM3'] }, 'f');
    const model = out.find((i) => i.check === 'fleet gpu model')!;
    expect(model.status).toBe('fail');
    expect(model.detail).toMatch(/1 of 3 GPUs are "NVIDIA H100 PCIe"/);
    expect(model.fix).toMatch(/gpu-product/);
  });
});
