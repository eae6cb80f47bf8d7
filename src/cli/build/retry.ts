// `bkci build retry`: retry the failed jobs of a build in place, or rebuild it as a new build.
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Io } from '../../util/io.js';
import { writeApiResult } from '../../util/output.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, type RunF } from '../command.js';
import { type BuildRef, buildRef, buildRefShape, printBuild, waitAndReport, type WaitInput, waitOptions, waitShape } from './shared.js';

export interface RetryInput extends ApiInput, WaitInput {
  build: BuildRef;
  rebuild: boolean;
  wait: boolean;
}

export function retryCommand(build: Command, io: Io, run: RunF<RetryInput> = runRetry): Command {
  const cmd = build
    .command('retry')
    .description('retry the failed jobs of a build in place (PUT .../jobs/{id}/retry); --rebuild starts a new build instead')
    .argument('<build>', 'build number or URL', buildRef)
    .addOption(new Option('--failed', 'retry the failed jobs (the default, accepted for clarity)').conflicts('rebuild'))
    .option('--rebuild', 'rebuild the whole build as a new build (PUT .../rebuild)')
    .option('--wait', 'then wait for the build and exit with its result');
  waitOptions(apiOptions(cmd));
  return cmd.action(async (ref: BuildRef, flags: ApiFlagValues & { rebuild?: boolean; wait?: boolean; timeout?: number; failFast?: boolean }) => {
    const input = await checkInput(
      cmd,
      (z) => z.object({ ...apiShape(z), ...waitShape(z), build: buildRefShape(z), rebuild: z.boolean(), wait: z.boolean() }),
      {
        ...apiInput(flags, io, ref),
        build: ref,
        rebuild: flags.rebuild === true,
        wait: flags.wait === true,
        timeoutMs: flags.timeout,
        failFast: flags.failFast === true,
      },
    );
    await run(input, io);
  });
}

export async function runRetry(input: RetryInput, io: Io): Promise<void> {
  const n = input.build.number;
  await withApi(input, io, true, async (api) => {
    let target = n;
    if (!input.rebuild) {
      const retried = await api.retryFailedJobs(n);
      if (!input.wait) return writeApiResult(io, input.json, { build: n, retried }, (r) => r.retried.map((j) => `${j.name}\t${j.retry}\n`).join(''));
    } else {
      const b = await api.rebuild(n);
      target = b.number;
      io.log.info({ from: n, build: b.number }, `rebuilt #${n} as #${b.number}`);
      if (!input.wait) return printBuild(io, b, input.json);
    }
    await waitAndReport(api, target, io, input);
  });
}
