// `bkci build submit`: start a build; with --wait, wait for it and exit with its result.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, collectPair, envValue, type RunF } from '../command.js';
import { printBuild, waitAndReport, type WaitInput, waitOptions, waitShape } from './shared.js';

export interface SubmitInput extends ApiInput, WaitInput {
  branch: string;
  commit: string;
  message: string;
  env: Record<string, string>;
  metaData: Record<string, string>;
  wait: boolean;
}

interface SubmitFlags extends ApiFlagValues {
  branch?: string;
  commit: string;
  message?: string;
  env: [string, string][];
  metaData: [string, string][];
  wait?: boolean;
  timeout?: number;
  failFast?: boolean;
}

export function submitCommand(build: Command, io: Io, run: RunF<SubmitInput> = runSubmit): Command {
  const cmd = build
    .command('submit')
    .description('start a build; with --wait, wait for it and exit with its result')
    .option('--branch <branch>', 'branch to build (owner:branch for a fork; default: $BUILDKITE_BRANCH)')
    .option('--commit <sha>', 'commit to build', 'HEAD')
    .option('--message <text>', 'build message (default: "bkci: BRANCH")')
    .option('--env <K=V>', 'build environment variable; repeatable', collectPair, [])
    .option('--meta-data <K=V>', 'build meta-data; repeatable', collectPair, [])
    .option('--wait', 'wait for the build to finish and exit with its result');
  waitOptions(apiOptions(cmd)).addHelpText(
    'after',
    '\nExamples:\n  bkci build submit --branch main --wait --timeout 1h\n  bkci build submit --branch alice:fix-kernel --commit 3f2a9c1e... --env RUN_ALL=1 --json',
  );
  return cmd.action(async (flags: SubmitFlags) => {
    const branch = flags.branch ?? envValue(io, 'BUILDKITE_BRANCH');
    const input = await checkInput(
      cmd,
      (z) =>
        z
          .object({
            ...apiShape(z),
            ...waitShape(z),
            branch: z.string({ error: 'the branch to build (or set BUILDKITE_BRANCH)' }).trim().min(1, { error: 'the branch to build is empty' }),
            commit: z.string().min(1),
            message: z.string(),
            env: z.record(z.string(), z.string()),
            metaData: z.record(z.string(), z.string()),
            wait: z.boolean(),
          })
          .refine((i) => !(i.branch.includes(':') && i.commit.toUpperCase() === 'HEAD'), {
            path: ['branch'],
            error: 'a fork branch (owner:branch): Buildkite cannot build HEAD of a fork; pass --commit with the full commit SHA of the fork branch',
          }),
      {
        ...apiInput(flags, io),
        branch,
        commit: flags.commit,
        message: flags.message ?? `bkci: ${branch ?? ''}`,
        env: Object.fromEntries(flags.env),
        metaData: Object.fromEntries(flags.metaData),
        wait: flags.wait === true,
        timeoutMs: flags.timeout,
        failFast: flags.failFast === true,
      },
    );
    await run(input, io);
  });
}

export async function runSubmit(input: SubmitInput, io: Io): Promise<void> {
  await withApi(input, io, true, async (api) => {
    const { branch, commit, message, env, metaData } = input;
    const b = await api.createBuild({ branch, commit, message, env, metaData });
    io.log.info({ build: b.number, url: b.web_url }, `created build #${b.number}`);
    if (input.wait) await waitAndReport(api, b.number, io, input);
    else printBuild(io, b, input.json);
  });
}
