// `bkci fleet k8s`: Helm values for buildkite/agent-stack-k8s, one YAML document per queue.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { collect } from '../command.js';
import { loadFleet, queuesOf } from './shared.js';

export function k8sCommand(fleet: Command, io: Io): Command {
  return fleet
    .command('k8s')
    .description('Helm values for buildkite/agent-stack-k8s: one document per queue (one controller polls one queue)')
    .argument('<file>', 'the fleet file (- for stdin)')
    .option('--queue <name>', 'only this queue; repeatable (default: every queue)', collect, [])
    .option('--json', 'print [{queue, values}] as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  bkci fleet k8s fleet.yaml --queue a100 > a100-values.yaml\n  helm upgrade --install bkci-a100 oci://ghcr.io/buildkite/helm/agent-stack-k8s --set agentToken=$TOKEN --values a100-values.yaml',
    )
    .action(async (file: string, flags: { queue: string[]; json?: boolean }) => {
      const f = await loadFleet(file, io);
      const { k8sValues, k8sValuesYaml } = await import('../../fleet/k8s.js');
      const queues = (await queuesOf(f, flags.queue)) ?? [...f.queues.values()];
      if (flags.json)
        writeResult(
          io,
          'json',
          queues.map((q) => ({ queue: q.name, values: k8sValues(q) })),
          () => '',
        );
      else io.stdout.write(await k8sValuesYaml(f, queues));
    });
}
