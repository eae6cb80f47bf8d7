// `bkci pipeline upload`: validate a pipeline, split it into batches under the per-upload job limit
// and hand each to `buildkite-agent pipeline upload` (or write them with --dry-run). Also the
// upload half of `pipeline render --upload`.
import type { Command } from 'commander';
import { SilentFailure, UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeFindings } from './findings.js';

export interface UploadFlags {
  maxJobs?: string;
  dryRun?: string;
  agentBin: string;
  json?: boolean;
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

// Adds the flags the upload shares with `render --upload`.
export function addUploadOptions(cmd: Command): Command {
  return cmd
    .option('--max-jobs <n>', 'at most N jobs per upload (default: BKCI_MAX_UPLOAD_JOBS, else 500, Buildkite’s default limit)')
    .option('--agent-bin <path>', 'the buildkite-agent to run (a path, or a name on PATH)', 'buildkite-agent');
}

// Validates, plans and uploads `text` (or writes the batches, with flags.dryRun). Prints the
// findings of an invalid pipeline and exits 1; the report goes to stdout with --json.
export async function uploadText(text: string, name: string, flags: UploadFlags, agentArgs: string[], io: Io): Promise<void> {
  const { maxJobsFrom, prepareUpload, runUpload } = await import('../../pipeline/upload/run.js');
  const maxJobs = maxJobsFrom(flags.maxJobs, io.env);
  const prepared = await prepareUpload(text, name, maxJobs);
  writeFindings(io, name, prepared.findings);
  if (!prepared.valid) {
    io.stderr.write(`bkci: ${name} is invalid; nothing was uploaded\n`);
    throw new SilentFailure();
  }
  if (flags.dryRun !== undefined && agentArgs.length) io.log.warn({ args: agentArgs }, '--dry-run uploads nothing: the arguments after -- are not used');
  const report = await runUpload(prepared, name, { maxJobs, dryRunDir: flags.dryRun, agentBin: flags.agentBin, agentArgs }, io);
  if (flags.json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else if (report.dryRun) for (const b of report.batches) io.stdout.write(`${b.file}\n`);
  const batches = `${report.batches.length} batch${report.batches.length === 1 ? '' : 'es'}`;
  io.log.info(report.dryRun ? `${report.totalJobs} jobs in ${batches} written; nothing uploaded` : `${report.totalJobs} jobs uploaded in ${batches}`);
}

export function uploadCommand(pipeline: Command, io: Io): Command {
  return addUploadOptions(
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
    )
    .action(async (file: string | undefined, _rest: string[], flags: UploadFlags & { json?: boolean }, cmd: Command) => {
      const agentArgs = argsAfterDoubleDash(cmd);
      // Operands after `--` are the agent's, whatever commander put in [file].
      const before = cmd.args.length - agentArgs.length;
      if (before > 1) throw new UsageError(`unexpected argument '${cmd.args[1]}'`, 'one pipeline FILE at most; arguments for the agent go after --');
      const path = before === 1 && file !== undefined ? file : '-';
      if (path === '-' && (io.stdin as { isTTY?: boolean }).isTTY)
        throw new UsageError('no pipeline: give a FILE, or pipe one on stdin', 'bkci pipeline upload .buildkite/pipeline.yml');
      const { readInput } = await import('../../util/io.js');
      const text = await readInput(path, io, 'pipeline');
      const name = path === '-' ? '<stdin>' : path;
      if (path !== '-' && text.length === 0) {
        io.stderr.write(
          `${name}:1:1: error: (file): the pipeline file is empty (buildkite-agent pipeline upload refuses it)\nbkci: ${name} is invalid; nothing was uploaded\n`,
        );
        throw new SilentFailure();
      }
      await uploadText(text, name, flags, agentArgs, io);
    });
}
