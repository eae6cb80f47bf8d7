// `bkci fleet elastic`: CloudFormation parameters for the Elastic CI Stack for AWS.
import type { Command } from 'commander';
import { Option } from 'commander';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';
import { type FleetInput, fleetArguments, fleetShape, loadFleet, queuesOf } from './shared.js';

export interface ElasticInput extends FleetInput {
  // json: the [{ParameterKey, ParameterValue}] of one stack; terraform: an HCL map of queue -> parameters.
  format: 'json' | 'terraform';
}

export function elasticCommand(fleet: Command, io: Io, run: RunF<ElasticInput> = runElastic): Command {
  const cmd = fleetArguments(
    fleet.command('elastic').description('Elastic CI Stack for AWS parameters: [{ParameterKey, ParameterValue}] JSON for one queue, or an HCL map'),
    'the queue (repeatable with --format terraform; default: every queue with an elastic section)',
  )
    .addOption(
      new Option('--format <format>', 'json: CloudFormation parameters of one stack; terraform: an HCL map of queue -> parameters')
        .choices(['json', 'terraform'])
        .default('json'),
    )
    .addOption(new Option('--json', 'the same as --format json').conflicts('format'))
    .addHelpText(
      'after',
      '\nExamples:\n  bkci fleet elastic fleet.yaml --queue l4 > l4-params.json\n  aws cloudformation create-stack --stack-name bk-l4 --template-url .../aws-stack.yml --parameters file://l4-params.json --capabilities CAPABILITY_NAMED_IAM',
    );
  return cmd.action(async (file: string, flags: { queue: string[]; format: 'json' | 'terraform'; json?: boolean }) => {
    const input = await checkInput(cmd, (z) => z.object({ ...fleetShape(z), format: z.enum(['json', 'terraform']) }), {
      file,
      queue: flags.queue,
      format: flags.json ? 'json' : flags.format,
    });
    await run(input, io);
  });
}

export async function runElastic(input: ElasticInput, io: Io): Promise<void> {
  const f = await loadFleet(input.file, io);
  const { elasticParameters, elasticQueues, elasticTerraform } = await import('../../fleet/elastic.js');
  const queues = elasticQueues(f, await queuesOf(f, input.queue));
  if (input.format === 'terraform') return writeResult(io, false, queues, (qs) => elasticTerraform(f, qs));
  if (queues.length !== 1)
    throw new UsageError(
      `--format json is the parameters of one stack, and ${queues.length} queues have an elastic section (${queues.map((q) => q.name).join(', ')})`,
      'name one with --queue, or use --format terraform for all',
    );
  writeResult(io, true, elasticParameters(queues[0]!), () => '');
}
