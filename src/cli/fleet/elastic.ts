// `bkci fleet elastic`: CloudFormation parameters for the Elastic CI Stack for AWS.
import type { Command } from 'commander';
import { Option } from 'commander';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { collect } from '../command.js';
import { loadFleet, queuesOf } from './shared.js';

export function elasticCommand(fleet: Command, io: Io): Command {
  return fleet
    .command('elastic')
    .description('Elastic CI Stack for AWS parameters: [{ParameterKey, ParameterValue}] JSON for one queue, or an HCL map')
    .argument('<file>', 'the fleet file (- for stdin)')
    .option('--queue <name>', 'the queue (repeatable with --format terraform; default: every queue with an elastic section)', collect, [])
    .addOption(
      new Option('--format <format>', 'json: CloudFormation parameters of one stack; terraform: an HCL map of queue -> parameters')
        .choices(['json', 'terraform'])
        .default('json'),
    )
    .option('--json', 'the same as --format json')
    .addHelpText(
      'after',
      '\nExamples:\n  bkci fleet elastic fleet.yaml --queue l4 > l4-params.json\n  aws cloudformation create-stack --stack-name bk-l4 --template-url .../aws-stack.yml --parameters file://l4-params.json --capabilities CAPABILITY_NAMED_IAM',
    )
    .action(async (file: string, flags: { queue: string[]; format: 'json' | 'terraform'; json?: boolean }) => {
      const f = await loadFleet(file, io);
      const { elasticParameters, elasticQueues, elasticTerraform } = await import('../../fleet/elastic.js');
      const queues = elasticQueues(f, await queuesOf(f, flags.queue));
      if (flags.format === 'terraform' && !flags.json) return void io.stdout.write(elasticTerraform(f, queues));
      if (queues.length !== 1)
        throw new UsageError(
          `--format json is the parameters of one stack, and ${queues.length} queues have an elastic section (${queues.map((q) => q.name).join(', ')})`,
          'name one with --queue, or use --format terraform for all',
        );
      writeResult(io, 'json', elasticParameters(queues[0]!), () => '');
    });
}
