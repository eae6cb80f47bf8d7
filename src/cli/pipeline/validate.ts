// `bkci pipeline validate`: check a pipeline as Buildkite would on upload (exit 1 when invalid).
import { visible } from '../../util/terminal.js';
import type { Command } from 'commander';
import { SilentFailure } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';
import { writeFindings } from './findings.js';

export interface ValidateInput {
  // A path, or - for stdin.
  file: string;
  json: boolean;
  // Also check each job's queue against a fleet file / the agents connected now.
  fleet?: string;
  checkQueues: boolean;
}

export function validateCommand(pipeline: Command, io: Io, run: RunF<ValidateInput> = runValidate): Command {
  const cmd = pipeline
    .command('validate')
    .description('check a pipeline as Buildkite would on upload (exit 1 when invalid)')
    .argument('[file]', 'pipeline YAML (- or omitted: stdin)', '-')
    .option('--json', 'print the verdict and findings as JSON on stdout')
    .option('--fleet <file>', "also check each job's queue (and resource class) against a fleet file: no agent would ever take the others")
    .option('--check-queues', 'also warn for each job no agent connected now could take (the agents API; needs a token)')
    .addHelpText('after', '\nExamples:\n  bkci pipeline validate .buildkite/pipeline.yml\n  bkci pipeline render | bkci pipeline validate -');
  return cmd.action(async (file: string, flags: { json?: boolean; fleet?: string; checkQueues?: boolean }) => {
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          file: z.string().min(1, { error: 'a pipeline file, or - for stdin' }),
          json: z.boolean(),
          fleet: z.string().min(1, { error: 'a fleet file' }).optional(),
          checkQueues: z.boolean(),
        }),
      {
        file,
        json: flags.json === true,
        fleet: flags.fleet,
        checkQueues: flags.checkQueues === true,
      },
    );
    await run(input, io);
  });
}

export async function runValidate(input: ValidateInput, io: Io): Promise<void> {
  const { file } = input;
  const [{ validatePipelineText, decodePipeline }, { readInputBytes }] = await Promise.all([import('../../pipeline/validate.js'), import('../../util/io.js')]);
  const { text, invalid } = decodePipeline(await readInputBytes(file, io, 'pipeline'));
  const v = invalid ? { valid: false, findings: [invalid], jobs: 0 } : await validatePipelineText(text);
  const name = file === '-' ? '<stdin>' : file;
  // The agent refuses an empty pipeline file (stdin with nothing on it uploads nothing).
  if (file !== '-' && text.length === 0 && !invalid) {
    v.valid = false;
    v.findings.push({ severity: 'error', path: '(file)', line: 1, col: 1, message: 'the pipeline file is empty (buildkite-agent pipeline upload refuses it)' });
  }
  if (input.fleet !== undefined || input.checkQueues) {
    const { fleetFindings } = await import('./fleet-findings.js');
    v.findings.push(...(await fleetFindings(text, input, io)));
    if (v.findings.some((f) => f.severity === 'error')) v.valid = false;
  }
  if (!input.json) writeFindings(io, name, v.findings);
  writeResult(io, input.json, { file: name, valid: v.valid, jobs: v.jobs, findings: v.findings }, (r) =>
    r.valid ? `${name}: valid (${r.jobs} job${r.jobs === 1 ? '' : 's'})\n` : '',
  );
  if (!v.valid) {
    if (!input.json) io.stderr.write(visible(`bkci: ${name} is invalid\n`));
    throw new SilentFailure();
  }
}
