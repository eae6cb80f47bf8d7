// `bkci fleet k8s`: Helm values for buildkite/agent-stack-k8s, one YAML document per queue.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';
import { type FleetInput, fleetArguments, fleetShape, loadFleet, queuesOf } from './shared.js';

export interface K8sInput extends FleetInput {
  json: boolean;
}

export function k8sCommand(fleet: Command, io: Io, run: RunF<K8sInput> = runK8s): Command {
  const cmd = fleetArguments(
    fleet.command('k8s').description('Helm values for buildkite/agent-stack-k8s: one document per queue (one controller polls one queue)'),
    'only this queue; repeatable (default: every queue)',
  )
    .option('--json', 'print [{queue, values}] as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  bkci fleet k8s fleet.yaml --queue a100 > a100-values.yaml\n  helm upgrade --install bkci-a100 oci://ghcr.io/buildkite/helm/agent-stack-k8s --set agentToken=$TOKEN --values a100-values.yaml',
    );
  return cmd.action(async (file: string, flags: { queue: string[]; json?: boolean }) => {
    const input = await checkInput(cmd, (z) => z.object({ ...fleetShape(z), json: z.boolean() }), { file, queue: flags.queue, json: flags.json === true });
    await run(input, io);
  });
}

export async function runK8s(input: K8sInput, io: Io): Promise<void> {
  const f = await loadFleet(input.file, io);
  const { k8sValues, k8sValuesYaml } = await import('../../fleet/k8s.js');
  const queues = (await queuesOf(f, input.queue)) ?? [...f.queues.values()];
  const yaml = input.json ? '' : await k8sValuesYaml(f, queues);
  writeResult(
    io,
    input.json,
    queues.map((q) => ({ queue: q.name, values: k8sValues(q) })),
    () => yaml,
  );
}
