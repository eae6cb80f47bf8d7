// `bkci build summary`: the table a nightly run posts (markdown or JSON), optionally as an annotation.
import type { Command } from 'commander';
import { Option } from 'commander';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { apiOptions, type CommonFlags, printJson, withApi } from '../api-command.js';
import { parseBuildRef } from './shared.js';

export function summaryCommand(build: Command, io: Io): Command {
  return apiOptions(
    build
      .command('summary')
      .description('the table a nightly run posts: job, status, agent (queue), minutes, links')
      .argument('<build>', 'build number or URL')
      .addOption(new Option('--format <format>', 'markdown or json').choices(['markdown', 'json']).default('markdown'))
      .option('--annotate', 'also post it with `buildkite-agent annotate` (inside a build)'),
    false,
  )
    .option('--json', 'same as --format json')
    .action(async (ref: string, flags: CommonFlags & { format: 'markdown' | 'json'; annotate?: boolean }) => {
      const n = parseBuildRef(ref, flags);
      if (flags.annotate && !io.env.BUILDKITE_JOB_ID)
        throw new UsageError(
          '--annotate works only inside a Buildkite job (BUILDKITE_JOB_ID is not set)',
          'run it as a step of a build, or drop --annotate and post the markdown yourself',
        );
      await withApi(flags, io, true, async (api) => {
        const { summaryRows, summaryMarkdown } = await import('../../api/builds.js');
        const b = await api.getBuild(n);
        const rows = summaryRows(b, await api.artifacts(n), io.now());
        const md = summaryMarkdown(b, rows);
        if (flags.json || flags.format === 'json') printJson(io, { build: b.number, state: b.state, url: b.web_url ?? null, jobs: rows });
        else io.stdout.write(md);
        if (flags.annotate) {
          const { annotate } = await import('../../api/annotate.js');
          await annotate(md, b.state === 'passed' ? 'success' : b.state === 'failed' || b.state === 'failing' ? 'error' : 'info', io);
        }
      });
    });
}
