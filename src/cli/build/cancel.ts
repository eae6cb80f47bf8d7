// `bkci build cancel`: cancel a build.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { apiOptions, type CommonFlags, withApi } from '../api-command.js';
import { parseBuildRef, printBuild } from './shared.js';

export function cancelCommand(build: Command, io: Io): Command {
  return apiOptions(build.command('cancel').description('cancel a build').argument('<build>', 'build number or URL')).action(
    async (ref: string, flags: CommonFlags) => {
      const n = parseBuildRef(ref, flags);
      await withApi(flags, io, true, async (api) => {
        const b = await api.cancelBuild(n);
        printBuild(io, b, flags.json);
      });
    },
  );
}
