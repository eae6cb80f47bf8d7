// `bkci fleet elastic`: CloudFormation parameters for the Elastic CI Stack for AWS
// (templates/aws-stack.yml), one stack per queue: as `aws cloudformation ... --parameters file://`
// JSON, or as an HCL map for Terraform. Parameter names are the stack template's own. The agent
// token is only ever named by its SSM parameter, never written out.
import { InputError } from '../util/errors.js';
import type { Fleet, Queue } from './model.js';

export interface StackParameter {
  ParameterKey: string;
  ParameterValue: string;
}

export function elasticParameters(q: Queue): StackParameter[] {
  const e = q.elastic;
  if (!e)
    throw new InputError(
      `queue ${q.name} has no elastic section`,
      'add elastic: {instance-types: [...], gpus-per-instance: N, max: N} to it in the fleet file',
    );
  const params: [string, string][] = [
    ['BuildkiteQueue', q.name],
    ['BuildkiteAgentTags', q.tags.map(([k, v]) => `${k}=${v}`).join(',')],
    ['InstanceTypes', e['instance-types'].join(',')],
    // One agent per GPU group; a CPU-only queue runs one agent per instance.
    ['AgentsPerInstance', String(q.gpus > 0 ? e['gpus-per-instance'] / q.gpus : 1)],
    ['MinSize', String(e.min)],
    ['MaxSize', String(e.max)],
    ['OnDemandPercentage', String(100 - e.spot)],
  ];
  if (e['token-parameter']) params.push(['BuildkiteAgentTokenParameterStorePath', e['token-parameter']]);
  if (e['image-id']) params.push(['ImageId', e['image-id']]);
  return params.map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue }));
}

// The queues that have an elastic section (named ones must have one).
export function elasticQueues(fleet: Fleet, named: Queue[] | undefined): Queue[] {
  if (named) {
    for (const q of named) {
      if (q.elastic) continue;
      const others = [...fleet.queues.values()].filter((o) => o.elastic).map((o) => o.name);
      throw new InputError(
        `--queue ${q.name}: queue ${q.name} of ${fleet.file} has no elastic section`,
        `add elastic: {instance-types: [...], gpus-per-instance: N, max: N} to it${others.length ? `, or name a queue that has one: ${others.join(', ')}` : ''}`,
      );
    }
    return named;
  }
  const all = [...fleet.queues.values()].filter((q) => q.elastic);
  if (!all.length) throw new InputError(`${fleet.file}: no queue has an elastic section`, 'add one (docs/fleet.md)');
  return all;
}

// A string as HCL writes it: JSON's escapes, plus `${` and `%{` doubled so Terraform does not
// read them as templates.
const hclString = (s: string) => JSON.stringify(s).replace(/\$\{/g, '$${').replace(/%\{/g, '%%{');

export function elasticTerraform(fleet: Fleet, queues: Queue[]): string {
  const blocks = queues.map((q) => {
    const params = elasticParameters(q);
    const width = Math.max(...params.map((p) => p.ParameterKey.length));
    const body = params.map(
      (p) =>
        `    ${p.ParameterKey.padEnd(width)} = ${/^(AgentsPerInstance|MinSize|MaxSize|OnDemandPercentage)$/.test(p.ParameterKey) ? p.ParameterValue : hclString(p.ParameterValue)}`,
    );
    return `  ${hclString(q.name)} = {\n${body.join('\n')}\n  }`;
  });
  return `# Elastic CI Stack parameters per queue (from ${fleet.file}); the agent token comes from SSM\n{\n${blocks.join('\n')}\n}\n`;
}
