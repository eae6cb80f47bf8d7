// `bkci build get`: show a build and its jobs.
import type { Command } from 'commander';
import type { Build } from '../../api/types.js';
import type { Io } from '../../util/io.js';
import { table, writeApiResult } from '../../util/output.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, type RunF } from '../command.js';
import { type BuildRef, buildRef, buildRefShape, span } from './shared.js';

export interface GetInput extends ApiInput {
  build: BuildRef;
}

export function getCommand(build: Command, io: Io, run: RunF<GetInput> = runGet): Command {
  const cmd = build.command('get').description('show a build and its jobs').argument('<build>', 'build number or URL', buildRef);
  apiOptions(cmd);
  return cmd.action(async (ref: BuildRef, flags: ApiFlagValues) => {
    const input = await checkInput(cmd, (z) => z.object({ ...apiShape(z), build: buildRefShape(z) }), { ...apiInput(flags, io, ref), build: ref });
    await run(input, io);
  });
}

export async function runGet(input: GetInput, io: Io): Promise<void> {
  await withApi(input, io, true, async (api) => {
    const b = await api.getBuild(input.build.number);
    const { scriptJobs, jobLabel } = await import('../../api/builds.js');
    writeApiResult(io, input.json, b, (b: Build) => {
      const head = `build #${b.number} ${b.state}\nbranch  ${b.branch ?? ''}\ncommit  ${b.commit ?? ''}\nmessage ${(b.message ?? '').split('\n')[0]}\ntook    ${span(b.started_at, b.finished_at, io) || '-'}\nurl     ${b.web_url ?? ''}\n\n`;
      const jobs = scriptJobs(b).map((j) => [
        jobLabel(j),
        j.soft_failed && j.state === 'failed' ? 'soft_failed' : (j.state ?? ''),
        span(j.started_at, j.finished_at, io),
        j.agent?.name ?? '',
        j.id,
      ]);
      return head + table(io, ['job', 'state', 'duration', 'agent', 'id'], jobs);
    });
  });
}
