// `bkci pipeline upload`: validate a pipeline, split it into batches under the per-upload job limit
// and hand each to `buildkite-agent pipeline upload` (or write them with --dry-run). Also the
// upload half of `pipeline render --upload` and `pipeline generate --upload` (uploadText).
import { visible } from '../../util/terminal.js';
import type { Command } from 'commander';
import { Option } from 'commander';
import { SilentFailure, UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import type { Zod } from '../zod.js';
import { checkInput, plural, type RunF, wholeNumber } from '../command.js';
import { writeFindings } from './findings.js';

export interface UploadInput {
  // A path, or - for stdin.
  file: string;
  // Jobs per upload: --max-jobs, else BKCI_MAX_UPLOAD_JOBS, else 500.
  maxJobs: number;
  // --dry-run DIR: write the batches there, upload nothing.
  dryRun?: string;
  agentBin: string;
  // The arguments after `--`, for every `buildkite-agent pipeline upload`.
  agentArgs: string[];
  json: boolean;
}

// What uploadText needs of an input (render and generate pass theirs). A maxJobs not yet a number
// is the --max-jobs text as given (undefined: BKCI_MAX_UPLOAD_JOBS, else 500).
export type UploadSettings = Pick<UploadInput, 'dryRun' | 'agentBin'> & { maxJobs?: number | string; json?: boolean };

// The job limit per upload: --max-jobs, else BKCI_MAX_UPLOAD_JOBS, else 500 (a bad variable is exit 2 naming it).
export async function maxJobsOf(flag: number | string | undefined, io: Io): Promise<number> {
  if (typeof flag === 'number') return flag;
  const { maxJobsFrom } = await import('../../pipeline/upload/run.js');
  return maxJobsFrom(flag, io.env);
}

// The arguments after `--` on the command line (commander hands them over as operands, mixed
// with the ones before): read from the root command's raw argv.
export function argsAfterDoubleDash(cmd: Command): string[] {
  let root = cmd;
  while (root.parent) root = root.parent;
  const raw = (root as Command & { rawArgs?: string[] }).rawArgs ?? [];
  const i = raw.indexOf('--');
  return i < 0 ? [] : raw.slice(i + 1);
}

// Adds the flags the upload shares with `generate --upload`.
export function addUploadOptions(cmd: Command, prefix = ''): Command {
  return cmd
    .addOption(
      new Option('--max-jobs <n>', `${prefix}at most N jobs per upload (default: $BKCI_MAX_UPLOAD_JOBS, else 500, Buildkite’s default limit)`).argParser(
        wholeNumber(1),
      ),
    )
    .option('--agent-bin <path>', `${prefix}the buildkite-agent to run (a path, or a name on PATH)`, 'buildkite-agent');
}

// The upload part of a checked input.
export const uploadShape = (z: Zod) => ({
  maxJobs: z.number().int().min(1),
  agentBin: z.string().min(1, { error: 'a buildkite-agent path or name' }),
  agentArgs: z.array(z.string()),
});

export function uploadCommand(pipeline: Command, io: Io, run: RunF<UploadInput> = runUpload): Command {
  const cmd = addUploadOptions(
    pipeline
      .command('upload')
      .description('validate a pipeline and upload it with buildkite-agent, split into batches under the per-upload job limit')
      .argument('[file]', 'pipeline YAML (- or omitted: stdin)')
      .argument('[agent-args...]', 'after --: passed to every `buildkite-agent pipeline upload` (--replace to the first only)'),
  )
    .option('--dry-run <dir>', 'write the batches to DIR/batch-001.yml ... and upload nothing')
    .option('--json', 'print the plan and what was uploaded as JSON on stdout')
    .addHelpText(
      'after',
      `
Jobs are counted as Buildkite counts them: parallelism copies, matrix combinations, +1 per group,
one per wait/block/input/trigger step. A group is never split. Exit 1: invalid pipeline, a group
above the limit, or a batch the agent refused (the batches before it stay uploaded).

Examples:
  bkci pipeline upload .buildkite/pipeline.yml
  generate-pipeline | bkci pipeline upload --max-jobs 750
  bkci pipeline upload pipeline.yml --dry-run batches/ && ls batches/
  bkci pipeline upload pipeline.yml -- --job "$OTHER_JOB_ID"`,
    );
  return cmd.action(async (file: string | undefined, _rest: string[], flags: { maxJobs?: number; dryRun?: string; agentBin: string; json?: boolean }) => {
    const agentArgs = argsAfterDoubleDash(cmd);
    // Operands after `--` are the agent's, whatever commander put in [file].
    const before = cmd.args.length - agentArgs.length;
    if (before > 1) throw new UsageError(`unexpected argument '${cmd.args[1]}'`, 'one pipeline FILE at most; arguments for the agent go after --');
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          file: z.string().min(1, { error: 'a pipeline file, or - for stdin' }),
          dryRun: z.string().min(1, { error: 'a directory for the batches' }).optional(),
          json: z.boolean(),
          ...uploadShape(z),
        }),
      {
        file: before === 1 && file !== undefined ? file : '-',
        maxJobs: await maxJobsOf(flags.maxJobs, io),
        dryRun: flags.dryRun,
        agentBin: flags.agentBin,
        agentArgs,
        json: flags.json === true,
      },
    );
    await run(input, io);
  });
}

export async function runUpload(input: UploadInput, io: Io): Promise<void> {
  const { file } = input;
  if (file === '-' && (io.stdin as { isTTY?: boolean }).isTTY)
    throw new UsageError('no pipeline: give a FILE, or pipe one on stdin', 'bkci pipeline upload .buildkite/pipeline.yml');
  const [{ readInputBytes }, { decodePipeline }] = await Promise.all([import('../../util/io.js'), import('../../pipeline/validate.js')]);
  const { text, invalid } = decodePipeline(await readInputBytes(file, io, 'pipeline'));
  const name = file === '-' ? '<stdin>' : file;
  if (invalid) {
    io.stderr.write(
      visible(`${name}:${invalid.line}:${invalid.col}: error: ${invalid.path}: ${invalid.message}\nbkci: ${name} is invalid; nothing was uploaded\n`),
    );
    throw new SilentFailure();
  }
  if (file !== '-' && text.length === 0) {
    io.stderr.write(
      visible(
        `${name}:1:1: error: (file): the pipeline file is empty (buildkite-agent pipeline upload refuses it)\nbkci: ${name} is invalid; nothing was uploaded\n`,
      ),
    );
    throw new SilentFailure();
  }
  await uploadText(text, name, input, input.agentArgs, io);
}

// Validates, plans and uploads `text` (or writes the batches, with dryRun). Prints the findings of
// an invalid pipeline and exits 1; the report goes to stdout with --json.
export async function uploadText(text: string, name: string, settings: UploadSettings, agentArgs: string[], io: Io): Promise<void> {
  const { prepareUpload, runUpload: upload } = await import('../../pipeline/upload/run.js');
  const maxJobs = await maxJobsOf(settings.maxJobs, io);
  const prepared = await prepareUpload(text, name, maxJobs);
  writeFindings(io, name, prepared.findings);
  if (!prepared.valid) {
    io.stderr.write(visible(`bkci: ${name} is invalid; nothing was uploaded\n`));
    throw new SilentFailure();
  }
  if (settings.dryRun !== undefined && agentArgs.length) io.log.warn({ args: agentArgs }, '--dry-run uploads nothing: the arguments after -- are not used');
  const report = await upload(prepared, name, { maxJobs, dryRunDir: settings.dryRun, agentBin: settings.agentBin, agentArgs }, io);
  writeResult(io, settings.json === true, report, (r) => (r.dryRun ? r.batches.map((b) => `${b.file}\n`).join('') : ''));
  const batches = report.batches.length === 1 ? '1 batch' : `${report.batches.length} batches`;
  io.log.info(
    report.dryRun ? `${plural(report.totalJobs, 'job')} in ${batches} written; nothing uploaded` : `${plural(report.totalJobs, 'job')} uploaded in ${batches}`,
  );
}
