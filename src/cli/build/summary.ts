// `bkci build summary`: the table a nightly run posts (markdown or JSON), optionally as an annotation.
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Io } from '../../util/io.js';
import { writeApiResult } from '../../util/output.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, envValue, type RunF } from '../command.js';
import { type BuildRef, buildRef, buildRefShape } from './shared.js';

export interface SummaryInput extends ApiInput {
  build: BuildRef;
  annotate: boolean;
}

export function summaryCommand(build: Command, io: Io, run: RunF<SummaryInput> = runSummary): Command {
  const cmd = build
    .command('summary')
    .description('the table a nightly run posts: job, status, agent (queue), minutes, links')
    .argument('<build>', 'build number or URL', buildRef)
    .addOption(new Option('--format <format>', 'markdown or json').choices(['markdown', 'json']).default('markdown'))
    .option('--annotate', 'also post it with `buildkite-agent annotate` (inside a build)');
  apiOptions(cmd, false).option('--json', 'same as --format json');
  return cmd.action(async (ref: BuildRef, flags: ApiFlagValues & { format: 'markdown' | 'json'; annotate?: boolean }) => {
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({ ...apiShape(z), build: buildRefShape(z), annotate: z.boolean() }).refine((i) => !i.annotate || envValue(io, 'BUILDKITE_JOB_ID'), {
          path: ['annotate'],
          error: 'works only inside a Buildkite job (BUILDKITE_JOB_ID is not set); run it as a step of a build, or post the markdown yourself',
        }),
      { ...apiInput(flags, io, ref), json: flags.json === true || flags.format === 'json', build: ref, annotate: flags.annotate === true },
    );
    await run(input, io);
  });
}

export async function runSummary(input: SummaryInput, io: Io): Promise<void> {
  const n = input.build.number;
  await withApi(input, io, true, async (api) => {
    const { summaryRows, summaryMarkdown } = await import('../../api/builds.js');
    const b = await api.getBuild(n);
    const rows = summaryRows(b, await api.artifacts(n), io.now());
    const md = summaryMarkdown(b, rows);
    writeApiResult(io, input.json, { build: b.number, state: b.state, url: b.web_url ?? null, jobs: rows }, () => md);
    if (input.annotate) {
      const [{ annotate }, { annotationStyle }] = await Promise.all([import('../../api/annotate.js'), import('../../api/annotation-style.js')]);
      await annotate(md, annotationStyle(b.state), io);
    }
  });
}
