// `bkci build wait`: wait for a build and exit with its result.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { apiOptions, withApi } from '../api-command.js';
import { parseBuildRef, waitAndReport, waitOptions, type WaitFlags } from './shared.js';

export function waitCommand(build: Command, io: Io): Command {
  return waitOptions(
    apiOptions(
      build.command('wait').description('wait for a build; exit 0 passed, 1 failed/canceled/not run/timed out').argument('<build>', 'build number or URL'),
    ),
  )
    .addHelpText('after', '\nA build stopped on a block step counts as finished: exit 0 when what ran passed.')
    .action(async (ref: string, flags: WaitFlags) => {
      const n = parseBuildRef(ref, flags);
      await withApi(flags, io, true, (api) => waitAndReport(api, n, io, flags));
    });
}
