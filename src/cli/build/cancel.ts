// `bkci build cancel`: cancel a build.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, type RunF } from '../command.js';
import { type BuildRef, buildRef, buildRefShape, printBuild } from './shared.js';

export interface CancelInput extends ApiInput {
  build: BuildRef;
}

export function cancelCommand(build: Command, io: Io, run: RunF<CancelInput> = runCancel): Command {
  const cmd = build.command('cancel').description('cancel a build').argument('<build>', 'build number or URL', buildRef);
  apiOptions(cmd);
  return cmd.action(async (ref: BuildRef, flags: ApiFlagValues) => {
    const input = await checkInput(cmd, (z) => z.object({ ...apiShape(z), build: buildRefShape(z) }), { ...apiInput(flags, io, ref), build: ref });
    await run(input, io);
  });
}

export async function runCancel(input: CancelInput, io: Io): Promise<void> {
  await withApi(input, io, true, async (api) => printBuild(io, await api.cancelBuild(input.build.number), input.json));
}
