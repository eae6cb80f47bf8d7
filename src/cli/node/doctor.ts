// `bkci node doctor`: check this host for the classic agent failures and say how to fix each.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { DoctorItem } from '../../node/vendors/types.js';
import { CheckFailed, UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';
import { rootOf } from './shared.js';

export interface DoctorInput {
  root: string;
  staging: boolean;
  hostRoot: string;
  json: boolean;
  // --fleet FILE --queue Q [--queue Q2]: also check the host against each queue (vendor, GPU
  // model, count).
  fleet?: { file: string; queues: string[] };
}

export function doctorCommand(node: Command, io: Io, run: RunF<DoctorInput> = runDoctorCommand): Command {
  const cmd = node
    .command('doctor')
    .description('check this host for the classic agent failures and say how to fix each; exit 1 when one fails')
    .option('--root <dir>', 'check a staged tree under DIR')
    .option('--host-root <dir>', 'read /sys, /proc and /dev under DIR', '/')
    .option('--json', 'print JSON')
    .option('--fleet <file>', 'also check the host against a queue of this fleet file (GPU vendor, model, count)')
    .option('--queue <queue>', 'the fleet queue this host serves (with --fleet; repeatable, as for setup)', (v: string, prev: string[] = []) => [...prev, v]);
  return cmd.action(async (flags: { root?: string; hostRoot: string; json?: boolean; fleet?: string; queue?: string[] }) => {
    if ((flags.fleet === undefined) !== (flags.queue === undefined))
      throw new UsageError(
        flags.fleet !== undefined ? '--fleet needs --queue: the queue this host serves' : '--queue needs --fleet FILE',
        'e.g. --fleet fleet.yaml --queue h100',
      );
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          root: z.string(),
          staging: z.boolean(),
          hostRoot: z.string(),
          json: z.boolean(),
          fleet: z.object({ file: z.string().min(1), queues: z.array(z.string().min(1)).min(1) }).optional(),
        }),
      {
        ...rootOf(io, flags.root),
        hostRoot: resolve(io.cwd, flags.hostRoot),
        json: flags.json === true,
        fleet: flags.fleet === undefined ? undefined : { file: flags.fleet, queues: flags.queue! },
      },
    );
    await run(input, io);
  });
}

export async function runDoctorCommand(input: DoctorInput, io: Io): Promise<void> {
  const fleetItems = input.fleet && (await fleetChecks(input.fleet.file, input.fleet.queues, input.hostRoot, io));
  const { runDoctor } = await import('../../node/doctor.js');
  const items = [...(await runDoctor({ root: input.root, staging: input.staging, hostRoot: input.hostRoot }, io)), ...(fleetItems ? await fleetItems() : [])];
  const failed = items.filter((i) => i.status === 'fail');
  writeResult(io, input.json, { ok: failed.length === 0, checks: items }, (r) =>
    r.checks.map((i) => `${i.status.toUpperCase().padEnd(4)}  ${i.check}: ${i.detail}\n${i.fix && i.status !== 'ok' ? `      fix: ${i.fix}\n` : ''}`).join(''),
  );
  if (failed.length) throw new CheckFailed(`${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((i) => i.check).join(', ')}`);
}

// --fleet: the file and queue are read first (a bad one is exit 2 before any check runs); the
// checks of the host against the queue run after the others.
async function fleetChecks(file: string, names: string[], hostRoot: string, io: Io): Promise<() => Promise<DoctorItem[]>> {
  const [{ loadFleet }, { pickQueues }, { fleetDoctorItems, hasGpus }, { NO_GPU }] = await Promise.all([
    import('../fleet/shared.js'),
    import('../../fleet/load.js'),
    import('../../fleet/node.js'),
    import('../../fleet/model.js'),
  ]);
  const fleet = await loadFleet(file, io);
  const queues = pickQueues(fleet, names);
  // Several queues: each one's items, named with their queue.
  return async () => {
    const out: DoctorItem[] = [];
    for (const q of queues) {
      const items = await queueItems(q);
      out.push(...(queues.length > 1 ? items.map((i) => ({ ...i, check: `${i.check} (${q.name})` })) : items));
    }
    return out;
  };
  async function queueItems(queue: (typeof queues)[number]): Promise<DoctorItem[]> {
    if (!hasGpus(queue)) return fleetDoctorItems(queue, { vendor: NO_GPU, gpuNames: [] }, fleet.file);
    const { detectHost } = await import('../../node/detect/index.js');
    try {
      const facts = await detectHost(hostRoot, 'auto', io);
      return fleetDoctorItems(queue, { vendor: facts.vendor, gpuNames: facts.gpus.map((g) => g.name) }, fleet.file);
    } catch (err) {
      const hint = (err as { hint?: string }).hint;
      return [
        {
          check: 'fleet vendor',
          status: 'fail',
          detail: `cannot list this host's GPUs: ${(err as Error).message}`,
          fix: hint ?? 'bkci node doctor without --fleet checks the driver',
        },
      ];
    }
  }
}
