// `bkci pipeline generate`: flags to a GenerateRequest, then the pipeline on stdout (or --output),
// or uploaded as `pipeline upload` does (--upload).
import type { Command } from 'commander';
import { Option } from 'commander';
import type { GenerateRequest, GenerateResult } from '../../pipeline/generate/run.js';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, envValue, list, type RunF } from '../command.js';
import { addUploadOptions, argsAfterDoubleDash, maxJobsOf, uploadShape, uploadText } from './upload.js';

export interface GenerateInput {
  request: GenerateRequest;
  // --explain: why each step runs or is blocked, on stderr (as JSON with --json).
  explain: boolean;
  json: boolean;
  output?: string;
  format: 'yaml' | 'json';
  // --upload: batches uploaded with buildkite-agent (--max-jobs, --agent-bin, arguments after --).
  upload: boolean;
  maxJobs: number;
  agentBin: string;
  agentArgs: string[];
}

interface GenerateFlags {
  config: string;
  profile: string;
  changedFiles?: string;
  diffBase?: string;
  labels?: string;
  otelBundle?: string;
  probe: boolean;
  fileOrder?: 'directory' | 'sorted';
  explain?: boolean;
  json?: boolean;
  output?: string;
  format: 'yaml' | 'json';
  upload?: boolean;
  unselected?: 'block' | 'group-block' | 'skip';
  maxJobs?: number;
  agentBin: string;
}

function generateOptions(cmd: Command): Command {
  cmd
    .description("generate a pipeline from test-area files (vLLM's .buildkite/test_areas format) with a site profile")
    .option('--config <file>', 'the generator config (job_dirs, run_all_patterns, registries, repositories, ...)', '.buildkite/ci_config.yaml')
    .option('--profile <name|file>', 'site profile: a bundled name (vllm) or a profile YAML file', 'vllm')
    .addOption(
      new Option('--changed-files <file>', 'changed paths, one per line (- for stdin), instead of asking git as the generator does').conflicts('diffBase'),
    )
    .option('--diff-base <ref>', 'changed files from git diff against the merge base with REF')
    .option('--labels <list>', 'comma-separated pull request labels (default: $BKCI_PR_LABELS; bkci never calls the GitHub API)')
    .option('--otel-bundle <file>', "base64 text of the tracing helper bundle the profile's otel setup embeds")
    .option('--no-probe', 'skip the registry login and image-exists probes of the profile (the fallback tags are used)')
    .addOption(
      new Option('--file-order <order>', 'test-area file order: as the file system lists them (directory, like os.walk) or sorted').choices([
        'directory',
        'sorted',
      ]),
    )
    .addOption(
      new Option(
        '--unselected <choice>',
        "steps selection does not run: block (a block + command pair each, vLLM's output), group-block (one block per group), skip",
      ).choices(['block', 'group-block', 'skip']),
    )
    .option('--explain', 'print on stderr why each step runs or is blocked, and the jobs per --unselected choice')
    .option('--json', 'with --explain: the explanation as JSON (on stderr)')
    .option('-o, --output <file>', 'write the pipeline to FILE atomically instead of stdout (a docs-only change writes the marker file beside it)')
    .addOption(new Option('--format <format>', 'output YAML or JSON').choices(['yaml', 'json']).default('yaml'))
    .addOption(
      new Option('--upload', 'upload the pipeline as `bkci pipeline upload` does (batches under the job limit; ARGS after -- go to the agent)').conflicts(
        'output',
      ),
    );
  return addUploadOptions(cmd, 'with --upload: ')
    .argument('[agent-args...]', 'after -- with --upload: passed to every `buildkite-agent pipeline upload`')
    .addHelpText(
      'after',
      `
Environment (as vLLM's generator reads it): BUILDKITE_BRANCH, BUILDKITE_COMMIT, BUILDKITE_PULL_REQUEST,
BUILDKITE_PULL_REQUEST_BASE_BRANCH, MERGE_BASE_COMMIT, RUN_ALL, NIGHTLY, TORCH_NIGHTLY, DOCS_ONLY_DISABLE,
SKIP_TIMEOUT, NOAUTO, PRIORITY, CONTINUE_ON_FAILURE, VLLM_CI_ONLY_STEP_KEYS, BKCI_PR_LABELS.

Examples:
  bkci pipeline generate --config .buildkite/ci_config.yaml --profile vllm -o .buildkite/pipeline.yaml
  bkci pipeline generate --changed-files - --explain < changed.txt
  bkci pipeline generate --upload --max-jobs 750

Exit codes: 0 generated (or a docs-only change: nothing to run), 1 a registry login or an upload
failed, 2 bad flags or bad input (the message names file:line).`,
    );
}

export function generateCommand(pipeline: Command, io: Io, run: RunF<GenerateInput> = runGenerate): Command {
  const cmd = generateOptions(pipeline.command('generate'));
  return cmd.action(async (_rest: string[], flags: GenerateFlags) => {
    const agentArgs = argsAfterDoubleDash(cmd);
    if (cmd.args.length > agentArgs.length)
      throw new UsageError(`unexpected argument '${cmd.args[0]}'`, 'generate takes flags only; arguments for the agent go after -- with --upload');
    if (agentArgs.length && !flags.upload) throw new UsageError('arguments after -- are for buildkite-agent: they need --upload');
    const request: GenerateRequest = {
      config: flags.config,
      profile: flags.profile,
      changedFiles: flags.changedFiles,
      diffBase: flags.diffBase,
      labels: list(flags.labels ?? envValue(io, 'BKCI_PR_LABELS')),
      otelBundle: flags.otelBundle,
      probe: flags.probe,
      fileOrder: flags.fileOrder,
      output: flags.output,
      unselected: flags.unselected,
      countChoices: flags.explain === true,
    };
    // Checked flat, so that a bad value is named by its flag; the request goes on whole (zod keeps
    // only the keys a schema names).
    const c = await checkInput(
      cmd,
      (z) =>
        z.object({
          config: z.string().min(1, { error: 'a generator config file' }),
          profile: z.string().min(1, { error: 'a bundled profile name (vllm) or a profile file' }),
          changedFiles: z.string().min(1, { error: 'a file of changed paths, or - for stdin' }).optional(),
          diffBase: z.string().min(1, { error: 'a git ref' }).optional(),
          otelBundle: z.string().min(1, { error: 'a file' }).optional(),
          explain: z.boolean(),
          json: z.boolean(),
          output: z.string().min(1, { error: 'a file name, or leave -o out for stdout' }).optional(),
          format: z.enum(['yaml', 'json']),
          upload: z.boolean(),
          ...uploadShape(z),
        }),
      {
        ...request,
        explain: flags.explain === true,
        json: flags.json === true,
        output: flags.output,
        format: flags.format,
        upload: flags.upload === true,
        maxJobs: await maxJobsOf(flags.maxJobs, io),
        agentBin: flags.agentBin,
        agentArgs,
      },
    );
    const { explain, json, output, format, upload, maxJobs, agentBin } = c;
    await run({ request, explain, json, output, format, upload, maxJobs, agentBin, agentArgs: c.agentArgs }, io);
  });
}

export async function runGenerate(input: GenerateInput, io: Io): Promise<void> {
  const { generatePipeline } = await import('../../pipeline/generate/run.js');
  const r = await generatePipeline(input.request, io);
  if (input.explain) {
    const explanation = { docsOnly: r.docsOnly, steps: r.decisions, jobsPerChoice: r.jobsPerChoice };
    writeResult(io, input.json, explanation, (e) => explainText(e, input.request.unselected), 'stderr');
  }
  if (r.docsOnly || !r.pipeline) return;
  if (input.upload) return uploadText(r.text!, '<generated pipeline>', input, input.agentArgs, io);
  const out = input.format === 'json' ? JSON.stringify(r.pipeline, null, 2) + '\n' : r.text!;
  if (input.output === undefined) return writeResult(io, false, out, (t) => t);
  const { writeOutput } = await import('../../util/output-file.js');
  const done = await writeOutput(input.output, out, io);
  if (done !== 'stdout') io.log.info({ file: input.output }, done === 'unchanged' ? 'pipeline unchanged: nothing written' : 'pipeline written');
}

// --explain as text: one line per step, `run`, `block` (or `skip`), and why.
function explainText(e: { docsOnly: boolean; steps: GenerateResult['decisions']; jobsPerChoice?: Record<string, number> }, unselected?: string): string {
  if (e.docsOnly) return 'docs-only change: no pipeline\n';
  const held = unselected === 'skip' ? 'skip ' : 'block';
  const steps = e.steps.map((d) => `${d.run ? 'run  ' : held} ${d.key}: ${d.reason}\n`).join('');
  if (!e.jobsPerChoice) return steps;
  return `${steps}jobs per --unselected choice: ${Object.entries(e.jobsPerChoice)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}\n`;
}
