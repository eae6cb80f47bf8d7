// `bkci pipeline render`: a Jinja template and its test list into a pipeline on stdout (or -o FILE).
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { RenderRequest } from '../../pipeline/render.js';
import { SilentFailure, UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, collect, list, type RunF } from '../command.js';
import { writeFindings } from './findings.js';
import { argsAfterDoubleDash, uploadText } from './upload.js';

export interface RenderInput {
  request: RenderRequest;
  // --explain: why each step runs or not, on stderr (as JSON with --json).
  explain: boolean;
  json: boolean;
  validate: boolean;
  // --fleet: each job's queue checked against a fleet file as part of validation.
  fleet?: string;
  output?: string;
  format: 'yaml' | 'json';
  // --upload: batches uploaded with buildkite-agent (--max-jobs, --agent-bin, arguments after --).
  upload: boolean;
  maxJobs?: string;
  agentBin: string;
  agentArgs: string[];
}

interface RenderFlags {
  define: string[];
  strictUndefined?: boolean;
  strict?: boolean;
  env?: boolean;
  trimBlocks?: boolean;
  lstripBlocks?: boolean;
  autoescape: 'auto' | 'none' | 'html' | 'json';
  select?: string;
  include: boolean;
  safePath: string[];
  fuel?: number;
  changedFiles?: string;
  diffBase?: string;
  runAllPaths?: string[];
  runAll?: boolean;
  nightly?: boolean;
  stripBlankLines?: boolean;
  onlySteps?: string[];
  explain?: boolean;
  json?: boolean;
  validate: boolean;
  fleet?: string;
  output?: string;
  format: 'yaml' | 'json';
  newline: boolean;
  upload?: boolean;
  unselected?: 'block' | 'group-block' | 'skip';
  maxJobs?: string;
  agentBin: string;
}

function renderOptions(cmd: Command): Command {
  return cmd
    .description('render a Jinja template and its test list into a pipeline (a drop-in for minijinja-cli)')
    .argument('[template]', 'Jinja template (default: .buildkite/pipeline.j2, else the bundled templates/default.j2); - for stdin')
    .argument('[data]', 'YAML or JSON data, the root context (default: .buildkite/test-pipeline.yaml if present); - for stdin')
    .option('-D, --define <key=value>', 'set a variable: key=value (string), key:=value (YAML), key (true); repeatable', collect, [])
    .option('--strict-undefined', 'using an undefined variable is an error')
    .option('--strict', "the same (minijinja-cli's name)")
    .option('--env', 'every environment variable as ENV (as minijinja-cli --env)')
    .option('--py-compat', "accepted for minijinja-cli: Python's methods (.items(), .startswith()...) are always on")
    .option('--trim-blocks', 'remove the first newline after a block tag or comment (as minijinja-cli)')
    .option('--lstrip-blocks', 'remove spaces and tabs before a block tag or comment that starts its line (as minijinja-cli)')
    .option('--no-include', 'refuse include, import and extends (as minijinja-cli)')
    .option('--safe-path <dir>', 'load templates only from under DIR; repeatable (as minijinja-cli)', collect, [])
    .addOption(
      new Option('--fuel <n>', 'how much work the render may do before it stops with an error (default 50000000; as minijinja-cli --fuel)').argParser((v) => {
        if (!/^[1-9]\d*$/.test(v) || !Number.isSafeInteger(Number(v))) throw new InvalidArgumentError('a whole number of 1 or more');
        return Number(v);
      }),
    )
    .option('--select <path>', 'use only this part of DATA as the context: a dotted path of keys and list indexes (as minijinja-cli --select)')
    .addOption(
      new Option(
        '-a, --autoescape <mode>',
        'autoescaping: by file name (auto: .html/.xml escape HTML, .json/.yaml/.yml values as JSON), or one mode for every template (as minijinja-cli)',
      )
        .choices(['auto', 'none', 'html', 'json'])
        .default('auto'),
    )
    .addOption(new Option('--changed-files <file>', 'changed paths, one per line (- for stdin): sets changed_files and list_file_diff').conflicts('diffBase'))
    .option('--diff-base <ref>', 'changed files from git diff against the merge base with REF')
    .option('--run-all-paths <globs>', 'comma-separated globs; a matching changed file sets run_all=1', list)
    .option('--run-all', 'set run_all=1 (select every step)')
    .option('--nightly', 'set nightly=1 (optional steps run unattended)')
    .option('--only-steps <keys>', 'comma-separated step keys: run only these and what they depend on', list)
    .option('--strip-blank-lines', "drop whitespace-only lines (replaces `sed '/^[[:space:]]*$/d'`)")
    .addOption(
      new Option(
        '--unselected <choice>',
        'the bundled template, steps selection does not run: a block + command pair each (block), one block per group (group-block), or emitted with skip: (skip); default: optional ones blocked, the others left out',
      ).choices(['block', 'group-block', 'skip']),
    )
    .option('--explain', 'print on stderr why each step runs or not, and the jobs per --unselected choice')
    .option('--json', 'with --explain: the explanation as JSON (on stderr)')
    .option('--no-validate', 'skip validating the rendered pipeline')
    .addOption(
      new Option('--fleet <file>', "also check each job's queue against a fleet file (docs/fleet.md): no agent would take the others").conflicts('validate'),
    )
    .option('-o, --output <file>', 'write the pipeline to FILE (replaced atomically when it changed; - is stdout; a device or FIFO is written to directly)')
    .addOption(new Option('--format <format>', 'output the rendered text (yaml) or the parsed pipeline as JSON').choices(['yaml', 'json']).default('yaml'))
    .option('-n, --no-newline', 'do not add the trailing newline minijinja-cli prints')
    .option('--upload', 'upload the rendered pipeline as `bkci pipeline upload` does (batches under the job limit; ARGS after -- go to the agent)')
    .option('--max-jobs <n>', 'with --upload: at most N jobs per upload (default: BKCI_MAX_UPLOAD_JOBS, else 500)')
    .option('--agent-bin <path>', 'with --upload: the buildkite-agent to run', 'buildkite-agent')
    .addHelpText(
      'after',
      `
Examples:
  bkci pipeline render test-template.j2 test-pipeline.yaml -D branch=main -D run_all=1 | buildkite-agent pipeline upload
  bkci pipeline render test-template.j2 test-pipeline.yaml -D branch=main --upload --max-jobs 750
  bkci pipeline render --diff-base origin/main --run-all-paths 'setup.py,csrc/**' --explain
  git diff --name-only origin/main | bkci pipeline render templates/default.j2 tests.yaml --changed-files -`,
    )
    .allowExcessArguments();
}

// The flags as a RenderRequest (what src/pipeline/render.ts takes).
function requestOf(template: string | undefined, data: string | undefined, flags: RenderFlags): RenderRequest {
  return {
    template,
    data,
    defines: flags.define,
    strictUndefined: flags.strictUndefined === true || flags.strict === true,
    envVariables: flags.env === true,
    trimBlocks: flags.trimBlocks === true,
    lstripBlocks: flags.lstripBlocks === true,
    autoescape: flags.autoescape,
    select: flags.select,
    noInclude: !flags.include,
    safePaths: flags.safePath,
    fuel: flags.fuel,
    changedFiles: flags.changedFiles,
    diffBase: flags.diffBase,
    runAllPaths: flags.runAllPaths,
    runAll: flags.runAll === true,
    nightly: flags.nightly === true,
    onlySteps: flags.onlySteps,
    stripBlankLines: flags.stripBlankLines === true,
    noNewline: !flags.newline,
    unselected: flags.unselected,
    jobsPerChoice: flags.explain === true,
  };
}

export function renderCommand(pipeline: Command, io: Io, run: RunF<RenderInput> = runRender): Command {
  const cmd = renderOptions(pipeline.command('render'));
  return cmd.action(async (template: string | undefined, data: string | undefined, flags: RenderFlags) => {
    // Operands after `--` are the agent's (with --upload), whatever commander put in [template] [data].
    const agentArgs = argsAfterDoubleDash(cmd);
    const before = cmd.args.length - agentArgs.length;
    if (before > 2)
      throw new UsageError(`unexpected argument '${cmd.args[2]}'`, 'render takes TEMPLATE and DATA; arguments for the agent go after -- with --upload');
    if (agentArgs.length && !flags.upload) throw new UsageError('arguments after -- are for buildkite-agent: they need --upload');
    if (before < 2) data = undefined;
    if (before < 1) template = undefined;
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          request: z.object({
            template: z.string().min(1, { error: 'a template file, or - for stdin' }).optional(),
            data: z.string().min(1, { error: 'a data file, or - for stdin' }).optional(),
            defines: z.array(z.string()),
            select: z.string().optional(),
            changedFiles: z.string().min(1).optional(),
            diffBase: z.string().min(1).optional(),
          }),
          explain: z.boolean(),
          json: z.boolean(),
          validate: z.boolean(),
          fleet: z.string().min(1, { error: 'a fleet file' }).optional(),
          output: z.string().min(1, { error: 'a file name, or leave -o out for stdout' }).optional(),
          format: z.enum(['yaml', 'json']),
          upload: z.boolean(),
          maxJobs: z.string().optional(),
          agentBin: z.string().min(1, { error: 'a buildkite-agent path or name' }),
          agentArgs: z.array(z.string()),
        }),
      {
        request: requestOf(template, data, flags),
        explain: flags.explain === true,
        json: flags.json === true,
        validate: flags.validate,
        fleet: flags.fleet,
        output: flags.output,
        format: flags.format,
        upload: flags.upload === true,
        maxJobs: flags.maxJobs,
        agentBin: flags.agentBin,
        agentArgs,
      },
    );
    // zod keeps only the keys a schema names: the request goes on whole.
    await run({ ...input, request: requestOf(template, data, flags) }, io);
  });
}

export async function runRender(input: RenderInput, io: Io): Promise<void> {
  // The validator (and zod) load while the template renders.
  const validatorLoading = input.validate || input.format === 'json' ? import('../../pipeline/validate.js') : undefined;
  validatorLoading?.catch(() => undefined);
  const { renderPipeline } = await import('../../pipeline/render.js');
  const result = await renderPipeline(input.request, io);
  if (input.explain) {
    const explanation = { steps: result.decisions, ...(result.jobsPerChoice ? { jobsPerChoice: result.jobsPerChoice } : {}) };
    writeResult(io, input.json, explanation, explainText, 'stderr');
  }
  if (input.upload) {
    // Validated (without the one-upload job limit), batched and uploaded as `pipeline upload` does.
    if (input.output) {
      const [{ resolve }, { writeIfChanged }] = await Promise.all([import('node:path'), import('../../util/atomic-write.js')]);
      await writeIfChanged(resolve(io.cwd, input.output), result.text, 0o644);
    }
    return uploadText(result.text, '<rendered pipeline>', { maxJobs: input.maxJobs, agentBin: input.agentBin }, input.agentArgs, io);
  }
  let documents: unknown[] | undefined;
  if (validatorLoading) {
    const { validatePipelineText } = await validatorLoading;
    const v = await validatePipelineText(result.text);
    documents = v.documents;
    if (input.fleet !== undefined) {
      const { fleetFindings } = await import('./fleet-findings.js');
      v.findings.push(...(await fleetFindings(result.text, { fleet: input.fleet }, io)));
      if (v.findings.some((f) => f.severity === 'error')) v.valid = false;
    }
    if (input.validate) {
      writeFindings(io, '<rendered pipeline>', v.findings);
      if (!v.valid) {
        const errors = v.findings.filter((f) => f.severity === 'error').length;
        io.stderr.write(
          `bkci: the rendered pipeline is invalid (${errors} error(s)); nothing was printed\nhint: fix the template or its data, or pass --no-validate to print it anyway\n`,
        );
        throw new SilentFailure();
      }
    }
  }
  const product = input.format === 'json' ? (documents && documents.length === 1 ? documents[0] : documents) : result.text;
  const text = (p: unknown) => (typeof p === 'string' ? p : '');
  if (input.output === undefined) return writeResult(io, input.format === 'json', product, text);
  const out = input.format === 'json' ? JSON.stringify(product, null, 2) + '\n' : result.text;
  const { writeOutput } = await import('../../util/output-file.js');
  const done = await writeOutput(input.output, out, io);
  if (done !== 'stdout') io.log.info({ file: input.output }, done === 'unchanged' ? 'pipeline unchanged: nothing written' : 'pipeline written');
}

// --explain as text: one line per step, `run`, `skip` or `block`, and why.
function explainText(e: { steps: { id: string; run: boolean; blocked: boolean; reasons: string[] }[]; jobsPerChoice?: Record<string, number> }): string {
  const steps = e.steps.map((d) => `${!d.run ? 'skip ' : d.blocked ? 'block' : 'run  '} ${d.id}: ${d.reasons.join('; ')}\n`).join('');
  if (!e.jobsPerChoice) return steps;
  const choices = Object.entries(e.jobsPerChoice).map(([k, v]) => `${k === 'default' ? '(not given)' : k} ${v}`);
  return steps + `jobs per --unselected choice: ${choices.join(', ')}\n`;
}
