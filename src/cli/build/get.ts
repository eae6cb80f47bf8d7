// `bkci build get`: show a build and its jobs.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { table } from '../../util/output.js';
import { apiOptions, type CommonFlags, printJson, withApi } from '../api-command.js';
import { parseBuildRef, span } from './shared.js';

export function getCommand(build: Command, io: Io): Command {
  return apiOptions(build.command('get').description('show a build and its jobs').argument('<build>', 'build number or URL')).action(
    async (ref: string, flags: CommonFlags) => {
      const n = parseBuildRef(ref, flags);
      await withApi(flags, io, true, async (api) => {
        const b = await api.getBuild(n);
        if (flags.json) return printJson(io, b);
        const { scriptJobs, jobLabel } = await import('../../api/builds.js');
        io.stdout.write(
          `build #${b.number} ${b.state}\nbranch  ${b.branch ?? ''}\ncommit  ${b.commit ?? ''}\nmessage ${(b.message ?? '').split('\n')[0]}\ntook    ${span(b.started_at, b.finished_at, io) || '-'}\nurl     ${b.web_url ?? ''}\n\n` +
            table(
              io,
              ['job', 'state', 'duration', 'agent', 'id'],
              scriptJobs(b).map((j) => [
                jobLabel(j),
                j.soft_failed && j.state === 'failed' ? 'soft_failed' : (j.state ?? ''),
                span(j.started_at, j.finished_at, io),
                j.agent?.name ?? '',
                j.id,
              ]),
            ),
        );
      });
    },
  );
}
