// What the `bkci fleet ...` commands share: reading the fleet file and picking its queues.
import type { Fleet, Queue } from '../../fleet/model.js';
import type { Io } from '../../util/io.js';

export async function loadFleet(file: string, io: Io): Promise<Fleet> {
  const [{ readInput }, { parseFleet }] = await Promise.all([import('../../util/io.js'), import('../../fleet/load.js')]);
  return parseFleet(await readInput(file, io, 'fleet file'), file === '-' ? '<stdin>' : file);
}

export async function queuesOf(fleet: Fleet, names: string[]): Promise<Queue[] | undefined> {
  if (!names.length) return undefined;
  const { pickQueues } = await import('../../fleet/load.js');
  return pickQueues(fleet, names);
}
