// What the `bkci fleet ...` commands share: the fleet file argument and --queue, checked; reading
// the fleet file and picking its queues.
import type { Command } from 'commander';
import type { Fleet, Queue } from '../../fleet/model.js';
import type { Io } from '../../util/io.js';
import { collect } from '../command.js';
import type { Zod } from '../zod.js';

// The part of a fleet command's input the file and --queue make.
export interface FleetInput {
  // A path, or - for stdin.
  file: string;
  // --queue (repeatable): the queues to show; empty: every queue.
  queue: string[];
}

export function fleetArguments(cmd: Command, queueHelp: string): Command {
  return cmd.argument('<file>', 'the fleet file (- for stdin)').option('--queue <name>', queueHelp, collect, []);
}

export const fleetShape = (z: Zod) => ({
  file: z.string().min(1, { error: 'a fleet file, or - for stdin' }),
  queue: z.array(z.string().min(1, { error: 'a queue name' })),
});

export async function loadFleet(file: string, io: Io): Promise<Fleet> {
  const [{ readInput }, { parseFleet }] = await Promise.all([import('../../util/io.js'), import('../../fleet/load.js')]);
  return parseFleet(await readInput(file, io, 'fleet file'), file === '-' ? '<stdin>' : file);
}

// The queues named with --queue (each must exist: exit 2 naming it), or undefined for all.
export async function queuesOf(fleet: Fleet, names: string[]): Promise<Queue[] | undefined> {
  if (!names.length) return undefined;
  const { pickQueues } = await import('../../fleet/load.js');
  return pickQueues(fleet, names);
}
