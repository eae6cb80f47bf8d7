// `bkci pipeline lint --mirrors`: the test areas' mirror declarations against the hand-written
// vendor steps they replace (exit 1 when any differ).
import type { Command } from 'commander';
import { Option } from 'commander';
import { SilentFailure } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';

export interface LintInput {
  mirrors: boolean;
  config: string;
  profile: string;
  against?: string;
  vendor?: string;
  fileOrder?: 'directory' | 'sorted';
  json: boolean;
}

interface LintFlags {
  mirrors?: boolean;
  config: string;
  profile: string;
  against?: string;
  vendor?: string;
  fileOrder?: 'directory' | 'sorted';
  json?: boolean;
}

export function lintCommand(pipeline: Command, io: Io, run: RunF<LintInput> = runLint): Command {
  const cmd = pipeline
    .command('lint')
    .description('cross-file checks of a pipeline source; --mirrors: test-area mirrors against the hand-written vendor steps they replace')
    .option('--mirrors', "compare every mirror: declaration's emitted step with the hand-written vendor step it replaces")
    .option('--config <file>', 'the generator config (its job_dirs hold the test areas)', '.buildkite/ci_config.yaml')
    .option('--profile <name|file>', 'site profile: a bundled name (vllm) or a profile YAML file', 'vllm')
    .option('--against <file>', "the hand-written vendor steps (default: the profile's mirrors.<vendor>.handwritten.file)")
    .option('--vendor <name>', 'the profile mirror to check (default: the one with hand-written steps)')
    .addOption(new Option('--file-order <order>', 'test-area file order').choices(['directory', 'sorted']))
    .option('--json', 'print the report as JSON on stdout')
    .addHelpText(
      'after',
      `
Examples:
  bkci pipeline lint --mirrors
  bkci pipeline lint --mirrors --against .buildkite/test-amd.yaml --json

Exit codes: 0 every mirror agrees with its hand-written step, 1 some differ, 2 bad flags or input.`,
    );
  return cmd.action(async (flags: LintFlags) => {
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          mirrors: z.boolean({ error: 'the check to run (lint has one so far: --mirrors)' }),
          config: z.string().min(1, { error: 'a config file' }),
          profile: z.string().min(1, { error: 'a profile name or file' }),
          against: z.string().min(1, { error: 'a file of hand-written steps' }).optional(),
          vendor: z.string().min(1, { error: 'a mirror name of the profile (e.g. amd)' }).optional(),
          fileOrder: z.enum(['directory', 'sorted']).optional(),
          json: z.boolean(),
        }),
      {
        mirrors: flags.mirrors === true ? true : undefined,
        config: flags.config,
        profile: flags.profile,
        against: flags.against,
        vendor: flags.vendor,
        fileOrder: flags.fileOrder,
        json: flags.json === true,
      },
    );
    await run(input, io);
  });
}

export async function runLint(input: LintInput, io: Io): Promise<void> {
  const { lintMirrors, formatMirrorReport } = await import('../../pipeline/lint-mirrors.js');
  const report = await lintMirrors(input, io.cwd);
  for (const w of report.warnings ?? []) io.log.warn(w);
  writeResult(io, input.json, report, formatMirrorReport);
  if (report.disagreeing > 0) throw new SilentFailure();
}
