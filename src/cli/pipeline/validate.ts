// `bkci pipeline validate`: check a pipeline as Buildkite would on upload (exit 1 when invalid).
import type { Command } from 'commander';
import { SilentFailure } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeFindings } from './findings.js';

export function validateCommand(pipeline: Command, io: Io): Command {
  return pipeline
    .command('validate')
    .description('check a pipeline as Buildkite would on upload (exit 1 when invalid)')
    .argument('[file]', 'pipeline YAML (- or omitted: stdin)', '-')
    .option('--json', 'print the verdict and findings as JSON on stdout')
    .option('--fleet <file>', "also check each job's queue (and resource class) against a fleet file: no agent would ever take the others")
    .option('--check-queues', 'also warn for each job no agent connected now could take (the agents API; needs a token)')
    .addHelpText('after', '\nExamples:\n  bkci pipeline validate .buildkite/pipeline.yml\n  bkci pipeline render | bkci pipeline validate -')
    .action(async (file: string, flags: { json?: boolean; fleet?: string; checkQueues?: boolean }) => {
      const [{ validatePipelineText }, { readInput }] = await Promise.all([import('../../pipeline/validate.js'), import('../../util/io.js')]);
      const text = await readInput(file, io, 'pipeline');
      const v = await validatePipelineText(text);
      const name = file === '-' ? '<stdin>' : file;
      // The agent refuses an empty pipeline file (stdin with nothing on it uploads nothing).
      if (file !== '-' && text.length === 0) {
        v.valid = false;
        v.findings.push({
          severity: 'error',
          path: '(file)',
          line: 1,
          col: 1,
          message: 'the pipeline file is empty (buildkite-agent pipeline upload refuses it)',
        });
      }
      if (flags.fleet !== undefined || flags.checkQueues) {
        const { fleetFindings } = await import('./fleet-findings.js');
        v.findings.push(...(await fleetFindings(text, flags, io)));
        if (v.findings.some((f) => f.severity === 'error')) v.valid = false;
      }
      if (flags.json) io.stdout.write(JSON.stringify({ file: name, valid: v.valid, jobs: v.jobs, findings: v.findings }, null, 2) + '\n');
      else {
        writeFindings(io, name, v.findings);
        if (v.valid) io.stdout.write(`${name}: valid (${v.jobs} job${v.jobs === 1 ? '' : 's'})\n`);
      }
      if (!v.valid) {
        if (!flags.json) io.stderr.write(`bkci: ${name} is invalid\n`);
        throw new SilentFailure();
      }
    });
}
