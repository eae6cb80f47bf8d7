// `bkci build submit`: start a build; with --wait, wait for it and exit with its result.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { apiOptions, withApi } from '../api-command.js';
import { collect } from '../command.js';
import { printBuild, waitAndReport, waitOptions, type WaitFlags } from './shared.js';

export function submitCommand(build: Command, io: Io): Command {
  return waitOptions(
    apiOptions(
      build
        .command('submit')
        .description('start a build; with --wait, wait for it and exit with its result')
        .requiredOption('--branch <branch>', 'branch to build (owner:branch for a fork; default: $BUILDKITE_BRANCH)', io.env.BUILDKITE_BRANCH || undefined)
        .option('--commit <sha>', 'commit to build', 'HEAD')
        .option('--message <text>', 'build message')
        .option('--env <K=V>', 'build environment variable; repeatable', collect, [])
        .option('--meta-data <K=V>', 'build meta-data; repeatable', collect, [])
        .option('--wait', 'wait for the build to finish and exit with its result'),
    ),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  bkci build submit --branch main --wait --timeout 1h\n  bkci build submit --branch alice:fix-kernel --commit 3f2a9c1e... --env RUN_ALL=1 --json',
    )
    .action(async (flags: WaitFlags & { branch: string; commit: string; message?: string; env: string[]; metaData: string[]; wait?: boolean }) => {
      const { checkSubmit, parsePairs } = await import('../../api/builds.js');
      checkSubmit(flags.branch, flags.commit);
      const env = parsePairs(flags.env, '--env');
      const metaData = parsePairs(flags.metaData, '--meta-data');
      await withApi(flags, io, true, async (api) => {
        const b = await api.createBuild({ branch: flags.branch, commit: flags.commit, message: flags.message ?? `bkci: ${flags.branch}`, env, metaData });
        io.log.info({ build: b.number, url: b.web_url }, `created build #${b.number}`);
        if (!flags.wait) {
          printBuild(io, b, flags.json);
          return;
        }
        await waitAndReport(api, b.number, io, flags);
      });
    });
}
