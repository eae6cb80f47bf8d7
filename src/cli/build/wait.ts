// `bkci build wait`: wait for a build and exit with its result.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, type RunF } from '../command.js';
import { type BuildRef, buildRef, buildRefShape, waitAndReport, type WaitInput, waitOptions, waitShape } from './shared.js';

export interface WaitCommandInput extends ApiInput, WaitInput {
  build: BuildRef;
}

export function waitCommand(build: Command, io: Io, run: RunF<WaitCommandInput> = runWait): Command {
  const cmd = build
    .command('wait')
    .description('wait for a build; exit 0 passed, 1 failed/canceled/not run/timed out')
    .argument('<build>', 'build number or URL', buildRef);
  waitOptions(apiOptions(cmd)).addHelpText('after', '\nA build stopped on a block step counts as finished: exit 0 when what ran passed.');
  return cmd.action(async (ref: BuildRef, flags: ApiFlagValues & { timeout?: number; failFast?: boolean }) => {
    const input = await checkInput(cmd, (z) => z.object({ ...apiShape(z), ...waitShape(z), build: buildRefShape(z) }), {
      ...apiInput(flags, io, ref),
      build: ref,
      timeoutMs: flags.timeout,
      failFast: flags.failFast === true,
    });
    await run(input, io);
  });
}

export async function runWait(input: WaitCommandInput, io: Io): Promise<void> {
  await withApi(input, io, true, (api) => waitAndReport(api, input.build.number, io, input));
}
