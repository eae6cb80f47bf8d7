// `bkci build logs`: print job logs as raw text.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { apiOptions, type CommonFlags, withApi } from '../api-command.js';
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
      // Each log is streamed through as it arrives (constant memory, even with --json).
      const logs = await api.logsOf(n, flags);
      if (flags.json) io.stdout.write(logs.length ? '[\n' : '[]\n');
      for (const [i, { job, pipe }] of logs.entries()) {
        if (flags.json) {
          const head = JSON.stringify({ job: job.id, name: jobLabel(job), state: job.state ?? null }, null, 2).slice(0, -2);
          io.stdout.write(`  ${head.replace(/\n/g, '\n  ')},\n    "log": "`);
          await pipe((text) => io.stdout.write(JSON.stringify(text).slice(1, -1)));
          io.stdout.write(`"\n  }${i < logs.length - 1 ? ',' : ''}\n${i === logs.length - 1 ? ']\n' : ''}`);
          continue;
        }
        if (!flags.job) io.stdout.write(`${i > 0 ? '\n' : ''}=== ${jobLabel(job)} (${job.state ?? 'unknown'}, job ${job.id}) ===\n`);
        let last = '';
        await pipe((text) => {
          io.stdout.write(text);
          last = text;
        });
        if (last !== '' && !last.endsWith('\n')) io.stdout.write('\n');
      }
    });
  });
}
