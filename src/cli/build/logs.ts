// `bkci build logs`: print job logs as raw text.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { apiOptions, type CommonFlags, printJson, withApi } from '../api-command.js';
import { parseBuildRef } from './shared.js';

export function logsCommand(build: Command, io: Io): Command {
  return apiOptions(
    build
      .command('logs')
      .description('print job logs as raw text: every script job in order under a header, or one job')
      .argument('<build>', 'build number or URL')
      .option('--job <id>', 'only this job (id or step key), without a header')
      .option('--failed', 'only the failed jobs'),
  ).action(async (ref: string, flags: CommonFlags & { job?: string; failed?: boolean }) => {
    const n = parseBuildRef(ref, flags);
    await withApi(flags, io, true, async (api) => {
      const { jobLabel } = await import('../../api/builds.js');
      if (flags.json) {
        const all = [];
        for await (const { job, log } of api.jobLogs(n, flags)) all.push({ job: job.id, name: jobLabel(job), state: job.state ?? null, log });
        return printJson(io, all);
      }
      // Each log is printed as soon as it has arrived.
      let i = 0;
      for await (const { job, log } of api.jobLogs(n, flags)) {
        if (!flags.job) io.stdout.write(`${i++ > 0 ? '\n' : ''}=== ${jobLabel(job)} (${job.state ?? 'unknown'}, job ${job.id}) ===\n`);
        io.stdout.write(log.endsWith('\n') || log === '' ? log : log + '\n');
      }
    });
  });
}
