// `bkci build list`: recent builds of the pipeline, newest first.
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Build } from '../../api/types.js';
import type { Io } from '../../util/io.js';
import { table, writeApiResult } from '../../util/output.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, list, type RunF, wholeNumber } from '../command.js';
import { span, when } from './shared.js';

export interface ListInput extends ApiInput {
  branch?: string;
  state?: string[];
  limit: number;
}

export function listCommand(build: Command, io: Io, run: RunF<ListInput> = runList): Command {
  const cmd = build
    .command('list')
    .description('list recent builds of the pipeline, newest first')
    .option('--branch <branch>', 'only this branch')
    .option('--state <state>', 'only these states (comma-separated: running,failed...)', list)
    .addOption(new Option('--limit <n>', 'at most N builds').argParser(wholeNumber(1)).default(30));
  apiOptions(cmd);
  return cmd.action(async (flags: ApiFlagValues & { branch?: string; state?: string[]; limit: number }) => {
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          ...apiShape(z),
          branch: z.string().min(1).optional(),
          state: z.array(z.string().regex(/^[a-z_]+$/, { error: 'build states are lower-case words (running, failed, passed...)' })).optional(),
          limit: z.number().int().min(1),
        }),
      { ...apiInput(flags, io), branch: flags.branch, state: flags.state, limit: flags.limit },
    );
    await run(input, io);
  });
}

export async function runList(input: ListInput, io: Io): Promise<void> {
  await withApi(input, io, true, async (api) => {
    const out: Build[] = [];
    for await (const b of api.listBuilds({ branch: input.branch, state: input.state })) {
      out.push(b);
      if (out.length >= input.limit) break;
    }
    writeApiResult(io, input.json, out, (builds) =>
      table(
        io,
        ['number', 'state', 'branch', 'commit', 'created', 'duration', 'message'],
        builds.map((b) => [
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
}
