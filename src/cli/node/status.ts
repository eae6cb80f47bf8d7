// `bkci node status`: the agents bkci manages here, their GPUs, cpusets, unit state, and drift.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { table, writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';
import { rootOf } from './shared.js';

export interface StatusInput {
  root: string;
  staging: boolean;
  json: boolean;
}

export function statusCommand(node: Command, io: Io, run: RunF<StatusInput> = runStatus): Command {
  const cmd = node
    .command('status')
    .description('the agents bkci manages here, their GPUs, cpusets, unit state, and hand edits (drift)')
    .option('--root <dir>', 'read a staged tree under DIR')
    .option('--json', 'print JSON');
  return cmd.action(async (flags: { root?: string; json?: boolean }) => {
    const input = await checkInput(cmd, (z) => z.object({ root: z.string(), staging: z.boolean(), json: z.boolean() }), {
      ...rootOf(io, flags.root),
      json: flags.json === true,
    });
    await run(input, io);
  });
}

export async function runStatus(input: StatusInput, io: Io): Promise<void> {
  const [{ nodeStatus }, { formatBytes }] = await Promise.all([import('../../node/status.js'), import('../../util/bytes.js')]);
  const s = await nodeStatus(input.root, io, !input.staging);
  const cleanupText = (c: { error?: string; freed: number; at?: string }) =>
    `${c.error ? `${c.error}, ` : ''}freed ${formatBytes(c.freed)}${c.at ? ` at ${c.at}` : ''}`;
  writeResult(io, input.json, s, (s) => {
    if (!s.managed) return 'no agents managed by bkci on this host (run bkci node setup)\n';
    // Several queues: a queue column, the agents of each queue together.
    const several = (s.queues?.length ?? 1) > 1;
    const rows = s.agents.map((a) => [
      ...(several ? [a.queue ?? '-'] : []),
      a.name,
      a.gpus.join(',') || '-',
      a.cpus,
      a.memoryMax,
      a.state,
      [a.reason, a.drift?.problem].filter(Boolean).join('; '),
    ]);
    return (
      `${several ? `queues ${s.queues!.join(', ')}` : `queue ${s.queue}`}, vendor ${s.vendor}, ${s.agents.length} agent${s.agents.length === 1 ? '' : 's'}\n` +
      table(io, [...(several ? ['queue'] : []), 'agent', 'gpus', 'cpus', 'memory', 'state', 'reason'], rows) +
      s.drift.map((d) => `drift: ${d.path}: ${d.problem}\n`).join('') +
      s.agents.map((a) => (a.lastDiskCleanup ? `disk cleanup: ${a.name}: ${cleanupText(a.lastDiskCleanup)}\n` : '')).join('')
    );
  });
  const drifted = s.agents.filter((a) => a.drift);
  if (drifted.length) io.log.warn({ agents: drifted.map((a) => a.instance).join(',') }, `agents no longer match their GPUs: ${drifted[0]!.drift!.fix}`);
  if (s.drift.length) io.log.warn({ files: s.drift.length }, 'managed files were changed by hand; re-run bkci node setup to restore them');
}
