// `bkci build retry`: retry the failed jobs of a build, or rebuild it.
import type { Command } from 'commander';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { apiOptions, printJson, withApi } from '../api-command.js';
import { parseBuildRef, printBuild, waitAndReport, waitOptions, type WaitFlags } from './shared.js';

export function retryCommand(build: Command, io: Io): Command {
  return waitOptions(
    apiOptions(
      build
        .command('retry')
        .description('retry the failed jobs of a build in place (PUT .../jobs/{id}/retry); --rebuild starts a new build instead')
        .argument('<build>', 'build number or URL')
        .option('--failed', 'retry the failed jobs (the default, accepted for clarity)')
        .option('--rebuild', 'rebuild the whole build as a new build (PUT .../rebuild)')
        .option('--wait', 'then wait for the build and exit with its result'),
    ),
  ).action(async (ref: string, flags: WaitFlags & { failed?: boolean; rebuild?: boolean; wait?: boolean }) => {
    const n = parseBuildRef(ref, flags);
    if (flags.failed && flags.rebuild)
      throw new UsageError('--failed and --rebuild cannot be used together', 'retry the failed jobs in place, or rebuild everything as a new build');
    await withApi(flags, io, true, async (api) => {
      let target = n;
      if (!flags.rebuild) {
        const retried = await api.retryFailedJobs(n);
        if (!flags.wait) {
          if (flags.json) printJson(io, { build: n, retried });
          else io.stdout.write(retried.map((r) => `${r.name}\t${r.retry}\n`).join(''));
          return;
        }
      } else {
        const b = await api.rebuild(n);
        target = b.number;
        io.log.info({ from: n, build: b.number }, `rebuilt #${n} as #${b.number}`);
        if (!flags.wait) {
          printBuild(io, b, flags.json);
          return;
        }
      }
      await waitAndReport(api, target, io, flags);
    });
  });
}
