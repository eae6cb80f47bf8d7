// `bkci node doctor`: check this host for the classic agent failures and say how to fix each.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CheckFailed } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';
import { rootOf } from './shared.js';

export interface DoctorInput {
  root: string;
  staging: boolean;
  hostRoot: string;
  json: boolean;
}

export function doctorCommand(node: Command, io: Io, run: RunF<DoctorInput> = runDoctorCommand): Command {
  const cmd = node
    .command('doctor')
    .description('check this host for the classic agent failures and say how to fix each; exit 1 when one fails')
    .option('--root <dir>', 'check a staged tree under DIR')
    .option('--host-root <dir>', 'read /sys, /proc and /dev under DIR', '/')
    .option('--json', 'print JSON');
  return cmd.action(async (flags: { root?: string; hostRoot: string; json?: boolean }) => {
    const input = await checkInput(cmd, (z) => z.object({ root: z.string(), staging: z.boolean(), hostRoot: z.string(), json: z.boolean() }), {
      ...rootOf(io, flags.root),
      hostRoot: resolve(io.cwd, flags.hostRoot),
      json: flags.json === true,
    });
    await run(input, io);
  });
}

export async function runDoctorCommand(input: DoctorInput, io: Io): Promise<void> {
  const { runDoctor } = await import('../../node/doctor.js');
  const items = await runDoctor({ root: input.root, staging: input.staging, hostRoot: input.hostRoot }, io);
  const failed = items.filter((i) => i.status === 'fail');
  writeResult(io, input.json, { ok: failed.length === 0, checks: items }, (r) =>
    r.checks.map((i) => `${i.status.toUpperCase().padEnd(4)}  ${i.check}: ${i.detail}\n${i.fix && i.status !== 'ok' ? `      fix: ${i.fix}\n` : ''}`).join(''),
  );
  if (failed.length) throw new CheckFailed(`${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((i) => i.check).join(', ')}`);
}
