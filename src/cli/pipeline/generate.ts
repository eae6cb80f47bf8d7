// `bkci pipeline generate`: flags to a GenerateRequest, then the pipeline on stdout (or --output).
import type { Command } from 'commander';
import { Option } from 'commander';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { argsAfterDoubleDash, uploadText } from './upload.js';

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
  maxJobs?: string;
  agentBin: string;
}

export function generateCommand(pipeline: Command, io: Io): Command {
  return pipeline
    .command('generate')
    .description("generate a pipeline from test-area files (vLLM's .buildkite/test_areas format) with a site profile")
    .option('--config <file>', 'the generator config (job_dirs, run_all_patterns, registries, repositories, ...)', '.buildkite/ci_config.yaml')
    .option('--profile <name|file>', 'site profile: a bundled name (vllm) or a profile YAML file', 'vllm')
    .option('--changed-files <file>', 'changed paths, one per line (- for stdin), instead of asking git as the generator does')
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
    .option('--upload', 'upload the pipeline as `bkci pipeline upload` does (batches under the job limit; ARGS after -- go to the agent)')
    .option('--max-jobs <n>', 'with --upload: at most N jobs per upload (default: BKCI_MAX_UPLOAD_JOBS, else 500)')
    .option('--agent-bin <path>', 'with --upload: the buildkite-agent to run', 'buildkite-agent')
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
    )
    .action(async (_rest: string[], flags: GenerateFlags, cmd: Command) => {
      const agentArgs = argsAfterDoubleDash(cmd);
      if (cmd.args.length > agentArgs.length)
        throw new UsageError(`unexpected argument '${cmd.args[0]}'`, 'generate takes flags only; arguments for the agent go after -- with --upload');
      if (agentArgs.length && !flags.upload) throw new UsageError('arguments after -- are for buildkite-agent: they need --upload');
      if (flags.upload && flags.output) throw new UsageError('--upload and --output cannot be used together', 'write the file, then bkci pipeline upload FILE');
      if (flags.changedFiles !== undefined && flags.diffBase !== undefined)
        throw new UsageError('--changed-files and --diff-base cannot be used together', 'pick one source of changed files');
      const { generatePipeline } = await import('../../pipeline/generate/run.js');
      const r = await generatePipeline(
        {
          config: flags.config,
          profile: flags.profile,
          changedFiles: flags.changedFiles,
          diffBase: flags.diffBase,
          labels: flags.labels
            ?.split(',')
            .map((s) => s.trim())
            .filter(Boolean),
          otelBundle: flags.otelBundle,
          probe: flags.probe,
          fileOrder: flags.fileOrder,
          output: flags.output,
          unselected: flags.unselected,
          countChoices: flags.explain === true,
        },
        io,
      );
      if (flags.explain) {
        const held = flags.unselected === 'skip' ? 'skip ' : 'block';
        if (flags.json) io.stderr.write(JSON.stringify({ docsOnly: r.docsOnly, steps: r.decisions, jobsPerChoice: r.jobsPerChoice }, null, 2) + '\n');
        else if (r.docsOnly) io.stderr.write('docs-only change: no pipeline\n');
        else {
          for (const d of r.decisions) io.stderr.write(`${d.run ? 'run  ' : held} ${d.key}: ${d.reason}\n`);
          if (r.jobsPerChoice)
            io.stderr.write(
              `jobs per --unselected choice: ${Object.entries(r.jobsPerChoice)
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')}\n`,
            );
        }
      }
      if (r.docsOnly || !r.pipeline) return;
      if (flags.upload) {
        await uploadText(r.text!, '<generated pipeline>', { maxJobs: flags.maxJobs, agentBin: flags.agentBin }, agentArgs, io);
        return;
      }
      const out = flags.format === 'json' ? JSON.stringify(r.pipeline, null, 2) + '\n' : r.text!;
      if (flags.output) {
        const [{ resolve }, { writeIfChanged }] = await Promise.all([import('node:path'), import('../../util/atomic-write.js')]);
        const wrote = await writeIfChanged(resolve(io.cwd, flags.output), out, 0o644);
        io.log.info({ file: flags.output }, wrote ? 'pipeline written' : 'pipeline unchanged: nothing written');
      } else io.stdout.write(out);
    });
}
