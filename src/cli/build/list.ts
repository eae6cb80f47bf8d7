// `bkci build list`: recent builds of the pipeline, newest first.
import type { Command } from 'commander';
import type { Build } from '../../api/types.js';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { table } from '../../util/output.js';
import { apiOptions, type CommonFlags, printJson, withApi } from '../api-command.js';
import { span, when } from './shared.js';

export function listCommand(build: Command, io: Io): Command {
  return apiOptions(
    build
      .command('list')
      .description('list recent builds of the pipeline, newest first')
      .option('--branch <branch>', 'only this branch')
      .option('--state <state>', 'only these states (comma-separated: running,failed...)')
      .option('--limit <n>', 'at most N builds', '30'),
  ).action(async (flags: CommonFlags & { branch?: string; state?: string; limit: string }) => {
    const limit = Number(flags.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit ${flags.limit}: expected a positive whole number`);
    const state = flags.state
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    await withApi(flags, io, true, async (api) => {
      const out: Build[] = [];
      for await (const b of api.listBuilds({ branch: flags.branch, state })) {
        out.push(b);
        if (out.length >= limit) break;
      }
      if (flags.json) return printJson(io, out);
      io.stdout.write(
        table(
          io,
          ['number', 'state', 'branch', 'commit', 'created', 'duration', 'message'],
          out.map((b) => [
            String(b.number),
            b.state,
            b.branch ?? '',
            (b.commit ?? '').slice(0, 10),
            when(b.created_at, io),
            span(b.started_at, b.finished_at, io),
            (b.message ?? '').split('\n')[0]!.slice(0, 60),
          ]),
        ),
      );
    });
  });
}
