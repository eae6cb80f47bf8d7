// The fleet file: parsing with located errors, and the three targets it produces (Helm values for
// agent-stack-k8s checked against the chart's own values.schema.json, Elastic CI Stack parameters
// checked against the stack template's Parameters), and pipelines checked against it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import type { Agent } from '../../src/api/types.js';
import { checkAgainstFleet } from '../../src/fleet/check.js';
import { elasticParameters, elasticTerraform } from '../../src/fleet/elastic.js';
import { k8sValues, k8sValuesYaml } from '../../src/fleet/k8s.js';
import { parseFleet, pickQueues } from '../../src/fleet/load.js';
import { memoryBytes } from '../../src/fleet/model.js';
import { checkAgainstAgents, fleetStatus, matchingAgents } from '../../src/fleet/status.js';

const FIX = join(import.meta.dirname, '../fixtures/fleet');
const read = (f: string) => readFileSync(join(FIX, f), 'utf8');
const example = () => parseFleet(read('example-fleet.yaml'), 'fleet.yaml');
const problems = (text: string): string => {
  try {
    parseFleet(text, 'f.yaml');
  } catch (err) {
    expect((err as { exitCode?: number }).exitCode).toBe(2);
    return (err as Error).message;
  }
  throw new Error('expected the fleet to be refused');
};

describe('the fleet file', () => {
  it('reads the worked example', () => {
    const f = example();
    expect([...f.queues.keys()]).toEqual(['h100', 'a100-k8s', 'l4', 'upload']);
    const h100 = f.queues.get('h100')!;
    expect(h100).toMatchObject({ vendor: 'nvidia', gpus: 1, cpus: 16, memoryBytes: 128 * 2 ** 30, tags: [['cuda', '12']] });
    expect(f.queues.get('upload')!.gpus).toBe(0);
    expect(f.defaultQueue).toBe('upload');
  });

  it('reads sizes as systemd does (powers of 1024) in either spelling', () => {
    expect(memoryBytes('128G')).toBe(memoryBytes('128Gi'));
    expect(memoryBytes('512M')).toBe(512 * 2 ** 20);
    expect(memoryBytes('1.5T')).toBe(1.5 * 2 ** 40);
    expect(memoryBytes(4096)).toBe(4096);
  });

  it('names the file, line, column and key of each problem, with did-you-mean', () => {
    const m = problems('queues:\n  h100:\n    vendor: nvidia\n    gpu: 2\n    memry: 4G\n');
    expect(m).toContain('f.yaml:4:5: queues.h100.gpu: unknown key `gpu` (did you mean `gpus`?)');
    expect(m).toContain('f.yaml:5:5: queues.h100.memry: unknown key `memry` (did you mean `memory`?)');
    expect(m).toMatch(/^f\.yaml: 2 problems in the fleet file/);
  });

  it('refuses bad values, each at its place', () => {
    expect(problems('queues:\n  h100: {vendor: nvdia}\n')).toMatch(/f\.yaml:2:\d+: queues\.h100\.vendor: expected one of "nvidia", "amd", "ascend", "none"/);
    expect(problems('queues:\n  x: {vendor: none, memory: lots}\n')).toMatch(/queues\.x\.memory: a size such as 128G/);
    expect(problems('queues:\n  "bad queue": {vendor: none}\n')).toMatch(/a queue name is letters/);
    expect(problems('queues:\n  x: {vendor: none, gpus: 2}\n')).toMatch(/f\.yaml:2:\d+: queues\.x\.gpus: vendor none has no GPUs/);
    expect(problems('queues:\n  x: {vendor: nvidia, tags: {queue: y}}\n')).toMatch(/the queue tag is the queue name itself/);
    expect(problems('queues:\n  x: {vendor: nvidia, tags: {"a b": c}}\n')).toMatch(/a tag name is/);
    expect(problems('queues:\n  x: {vendor: nvidia, tags: {a: "b,c"}}\n')).toMatch(/no spaces, commas/);
    expect(
      problems('queues:\n  x:\n    vendor: nvidia\n    gpus: 2\n    elastic: {instance-types: [g6.12xlarge], gpus-per-instance: 3, min: 5, max: 4}\n'),
    ).toMatch(/min 5 is above max 4[\s\S]*gpus-per-instance 3 is not a whole number of 2-GPU agents/);
    expect(problems('queues:\n  x: {vendor: none}\ndefault-queue: y\n')).toMatch(/default-queue y is not a queue/);
    expect(problems('queues: {}\n')).toMatch(/the fleet has no queues/);
  });

  it('refuses YAML it cannot read, located, and a repeated key', () => {
    expect(problems('queues:\n  x: [\n')).toMatch(/^f\.yaml: .*\nf\.yaml:\d+:\d+: /);
    expect(problems('queues:\n  x: {vendor: none}\n  x: {vendor: amd}\n')).toMatch(/f\.yaml:3:3: repeated key `x`: a key may be given only once/);
    expect(problems('- a\n- b\n')).toMatch(/f\.yaml:1:1: expected a mapping \(`key: value` lines\), got a list/);
    // zod's own words never reach the user: the problem in plain words, with the value given.
    expect(problems('queues:\n  x: 3\n')).toMatch(/f\.yaml:2:3: queues\.x: expected a mapping \(`key: value` lines\), got number 3/);
    expect(problems('queues:\n  x: {vendor: nvidia, gpus: 65}\n')).toMatch(/queues\.x\.gpus: must be at most 64, got number 65/);
    expect(problems('queues:\n  x: {vendor: nvidia, gpus: -1}\n')).toMatch(/queues\.x\.gpus: must be at least 0, got number -1/);
    expect(problems('queues:\n  x: {vendor: nvidia, cpus: 0}\n')).toMatch(/queues\.x\.cpus: must be more than 0, got number 0/);
    expect(problems('queues:\n  x: {vendor: nvidia, cpus: }\n')).toMatch(/queues\.x\.cpus: expected a number, got nothing/);
    expect(problems('queues:\n  x: {vendor: nvidia, gpus: 99, cpus: -2, memory: [], tags: 3, k8s: {tolerations: 4}}\n')).not.toMatch(
      /Too (small|big)|expected (record|object)/,
    );
    // An alias bomb is refused, located, in bkci's words (not the YAML library's).
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...'bcdefghij'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefghij'[i]}`).join(', ')}]`),
      'queues: {x: {vendor: none}}',
    ];
    expect(problems(bomb.join('\n') + '\n')).toMatch(/^f\.yaml: .*\nf\.yaml:\d+:\d+: .*alias/i);
  });

  it('--queue picks queues by name, with did-you-mean', () => {
    const f = example();
    expect(pickQueues(f, ['l4']).map((q) => q.name)).toEqual(['l4']);
    expect(() => pickQueues(f, ['h10'])).toThrow(/--queue h10: fleet\.yaml has no such queue \(did you mean h100\?\)/);
  });
});

// The chart's schema refers to Kubernetes' own definitions by URL; the ones it uses are stood in
// for here by the parts of the Kubernetes API reference that bkci writes (test/fixtures/fleet/README.md).
function chartValidator() {
  const schema = JSON.parse(read('agent-stack-k8s.values.schema.json'));
  const k8s = 'https://raw.githubusercontent.com/buildkite/kubernetes-json-schema/master/v1.35.0/_definitions.json';
  const quantity = { anyOf: [{ type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$' }, { type: 'number' }] };
  const definitions = {
    'io.k8s.api.core.v1.ResourceRequirements': {
      type: 'object',
      additionalProperties: false,
      properties: {
        requests: { type: 'object', additionalProperties: quantity },
        limits: { type: 'object', additionalProperties: quantity },
        claims: { type: 'array' },
      },
    },
    'io.k8s.api.core.v1.PodSpec': {
      type: 'object',
      properties: {
        priorityClassName: { type: 'string' },
        nodeSelector: { type: 'object', additionalProperties: { type: 'string' } },
        tolerations: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: {
              key: { type: 'string' },
              operator: { enum: ['Exists', 'Equal'] },
              value: { type: 'string' },
              effect: { enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] },
              tolerationSeconds: { type: 'integer' },
            },
          },
        },
      },
    },
  };
  const others = ['EnvFromSource', 'EnvVar', 'SecretVolumeSource', 'Volume', 'VolumeMount'];
  for (const o of others) (definitions as Record<string, unknown>)[`io.k8s.api.core.v1.${o}`] = { type: 'object' };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ $id: k8s, definitions });
  return ajv.compile(schema);
}

describe('fleet k8s', () => {
  // Helm checks the chart's defaults merged with the given values. The token comes at install time;
  // the controller image is written into the published chart's values.yaml by its release (the
  // schema's default stands in for it).
  const merge = (a: unknown, b: unknown): unknown =>
    a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)
      ? Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, k in b ? merge((a as any)[k], (b as any)[k]) : (a as any)[k]]))
      : (b ?? a);
  const defaults = {
    ...parseDocument(read('agent-stack-k8s.values.yaml')).toJS(),
    agentToken: 'set-at-install',
    image: 'ghcr.io/buildkite/agent-stack-k8s/controller:latest',
  };

  it('writes values the chart schema accepts, one controller per queue', () => {
    const validate = chartValidator();
    const f = example();
    for (const q of f.queues.values()) {
      const values = k8sValues(q);
      expect(values).not.toHaveProperty('agentToken');
      expect(validate(merge(defaults, values)), `${q.name}: ${JSON.stringify(validate.errors)}`).toBe(true);
      expect(values.config.queue).toBe(q.name);
    }
  });

  it('turns a GPU queue into a default resource class with requests = limits, and tolerations into pod-spec-patch', () => {
    const v = k8sValues(example().queues.get('a100-k8s')!).config;
    expect(v).toEqual({
      queue: 'a100-k8s',
      tags: ['queue=a100-k8s', 'cuda=12', 'pool=k8s'],
      image: 'public.ecr.aws/docker/library/python:3.12',
      'resource-classes': {
        'a100-k8s': {
          resource: {
            requests: { 'nvidia.com/gpu': '2', cpu: '24', memory: '200Gi' },
            limits: { 'nvidia.com/gpu': '2', cpu: '24', memory: '200Gi' },
          },
          nodeSelector: { 'vllm.ci/gpu-pool': 'a100', 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB' },
        },
      },
      'default-resource-class-name': 'a100-k8s',
      'pod-spec-patch': { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }], priorityClassName: 'gpu-priority-cls-2' },
    });
  });

  it('uses each vendor resource name, and fractional CPUs in millicores', () => {
    const f = parseFleet('queues:\n  m: {vendor: amd, gpus: 8}\n  n: {vendor: ascend, gpus: 2}\n  c: {vendor: none, cpus: 0.5}\n', 'f.yaml');
    expect(k8sValues(f.queues.get('m')!).config['resource-classes']).toEqual({
      m: { resource: { requests: { 'amd.com/gpu': '8' }, limits: { 'amd.com/gpu': '8' } } },
    });
    expect(JSON.stringify(k8sValues(f.queues.get('n')!))).toContain('"huawei.com/Ascend910":"2"');
    expect(JSON.stringify(k8sValues(f.queues.get('c')!))).toContain('"cpu":"500m"');
  });

  it('prints one YAML document per queue', async () => {
    const f = example();
    const text = await k8sValuesYaml(f, pickQueues(f, ['h100', 'upload']));
    const docs = text.split(/^---$/m);
    expect(docs).toHaveLength(2);
    expect(parseDocument(docs[1]!).toJS().config.queue).toBe('upload');
  });
});

describe('fleet elastic', () => {
  // The stack template's own parameter definitions (CloudFormation tags such as !Ref are read as text).
  const params = (() => {
    const doc = parseDocument(read('aws-stack.yml'), { customTags: [], logLevel: 'silent' });
    return doc.toJS().Parameters as Record<string, { Type: string; AllowedPattern?: string; MinValue?: number; MaxValue?: number; AllowedValues?: string[] }>;
  })();

  it('names only parameters the stack template has, with values its constraints accept', () => {
    const l4 = example().queues.get('l4')!;
    const out = elasticParameters(l4);
    for (const { ParameterKey, ParameterValue } of out) {
      const p = params[ParameterKey];
      expect(p, ParameterKey).toBeDefined();
      if (p!.AllowedPattern) expect(ParameterValue).toMatch(new RegExp(p!.AllowedPattern));
      if (p!.Type === 'Number') {
        expect(Number.isFinite(Number(ParameterValue))).toBe(true);
        if (p!.MinValue !== undefined) expect(Number(ParameterValue)).toBeGreaterThanOrEqual(p!.MinValue);
        if (p!.MaxValue !== undefined) expect(Number(ParameterValue)).toBeLessThanOrEqual(p!.MaxValue);
      }
      if (p!.AllowedValues) expect(p!.AllowedValues.map(String)).toContain(ParameterValue);
    }
    expect(Object.fromEntries(out.map((p) => [p.ParameterKey, p.ParameterValue]))).toEqual({
      BuildkiteQueue: 'l4',
      BuildkiteAgentTags: '',
      InstanceTypes: 'g6.12xlarge,g6e.12xlarge',
      AgentsPerInstance: '4',
      MinSize: '0',
      MaxSize: '16',
      OnDemandPercentage: '50',
      BuildkiteAgentTokenParameterStorePath: '/buildkite/agent-token',
    });
    expect(JSON.stringify(out)).not.toMatch(/BuildkiteAgentToken"/);
  });

  it('writes the same parameters as an HCL map', () => {
    const f = example();
    const hcl = elasticTerraform(f, [f.queues.get('l4')!]);
    expect(hcl).toContain('  "l4" = {\n');
    expect(hcl).toMatch(/ {4}AgentsPerInstance +=  ?4\n/);
    expect(hcl).toMatch(/ {4}InstanceTypes +=  ?"g6\.12xlarge,g6e\.12xlarge"\n/);
  });

  it('a queue without an elastic section is exit 2 naming it', () => {
    expect(() => elasticParameters(example().queues.get('h100')!)).toThrow(/queue h100 has no elastic section/);
  });
});

describe('pipeline validate --fleet', () => {
  const VLLM = join(import.meta.dirname, '../fixtures/vllm/expected');
  const renders = ['main-run-all', 'nightly', 'pr-coverage', 'pr-diff'].map((n) => join(VLLM, `${n}.pipeline.yaml`));
  const fleet = read('vllm-fleet.yaml');

  it("accepts vLLM's renders with a fleet naming their queues", () => {
    const f = parseFleet(fleet, 'vllm-fleet.yaml');
    for (const r of renders) expect(checkAgainstFleet(readFileSync(r, 'utf8'), f).filter((x) => x.severity === 'error')).toEqual([]);
  });

  it('finds exactly the steps of a queue removed from the fleet, located', () => {
    const f = parseFleet(fleet.replace(/^ {2}gpu_4_queue:.*\n/m, ''), 'vllm-fleet.yaml');
    const text = readFileSync(renders[0]!, 'utf8');
    const errors = checkAgainstFleet(text, f);
    const expected = text.split('\n').filter((l) => /^\s+queue: gpu_4_queue\s*$/.test(l)).length;
    expect(expected).toBeGreaterThan(0);
    expect(errors).toHaveLength(expected);
    const lines = text.split('\n');
    for (const e of errors) {
      expect(e.message).toMatch(/queue `gpu_4_queue` is not in vllm-fleet\.yaml: no agent will ever take this job \(did you mean `gpu_1_queue`\?\)/);
      expect(lines[e.line - 1]).toMatch(/queue: gpu_4_queue/);
    }
  });

  it('applies the default-queue rule, top-level agents, the list form and resource classes', () => {
    const f = example();
    const pipeline = [
      'agents: {queue: h100}',
      'steps:',
      '  - command: a', // top-level queue h100: fine
      '  - command: b',
      '    agents: ["queue=a100-k8s", "resource_class=a100-k8s"]',
      '  - command: c',
      '    agents: {queue: a100-k8s, resource_class: big}',
      '  - group: g',
      '    steps:',
      '      - command: d',
      '        agents: {queue: h10}',
      '  - wait',
      '  - command: e',
      '    agents: {queue: "${QUEUE}"}',
    ].join('\n');
    const out = checkAgainstFleet(pipeline, f);
    expect(out.map((x) => [x.severity, x.line, x.message.slice(0, 40)])).toEqual([
      ['error', 7, 'resource_class `big` is not defined for '],
      ['error', 11, 'queue `h10` is not in fleet.yaml: no age'],
      ['warning', 14, 'agents.queue ${QUEUE} is interpolated at'],
    ]);
    const noDefault = parseFleet('queues:\n  h100: {vendor: nvidia}\n', 'f.yaml');
    expect(checkAgainstFleet('steps:\n  - command: x\n', noDefault)[0]!.message).toMatch(
      /the job goes to the default queue `default`, which f\.yaml does not have/,
    );
  });
});

describe('fleet status and --check-queues', () => {
  const agent = (name: string, tags: string[], busy = false, state = 'connected') =>
    ({ id: name, name, connection_state: state, meta_data: tags, job: busy ? { id: 'j', name: 'gpu test' } : null }) as unknown as Agent;
  const agents = [
    agent('h100-gpu0', ['queue=h100', 'gpu=0', 'cuda=12'], true),
    agent('h100-gpu1', ['queue=h100', 'gpu=1', 'cuda=12']),
    agent('h100-gpu2', ['queue=h100', 'gpu=2', 'cuda=12'], false, 'disconnected'),
    agent('up-1', ['queue=upload']),
    agent('other', ['queue=h1000']),
  ];

  it('counts connected, busy and idle agents per queue by exact tag, and flags empty queues', () => {
    const rows = fleetStatus(example(), agents).map((r) => [r.queue, r.total, r.busy, r.idle, r.empty]);
    expect(rows).toEqual([
      ['h100', 2, 1, 1, false],
      ['a100-k8s', 0, 0, 0, true],
      ['l4', 0, 0, 0, true],
      ['upload', 1, 0, 1, false],
    ]);
  });

  it('warns, located, for each step no connected agent could take', () => {
    const text = 'steps:\n  - command: a\n    agents: {queue: h100, cuda: "12"}\n  - command: b\n    agents: {queue: h100, cuda: "11"}\n  - command: c\n';
    expect(matchingAgents(new Map([['queue', 'h100']]), agents)).toBe(2);
    const out = checkAgainstAgents(text, agents);
    expect(out.map((f) => [f.severity, f.line, f.message])).toEqual([
      ['warning', 4, 'no connected agent matches queue=h100, cuda=11 (0 agents now): the job would wait'],
      ['warning', 6, 'no connected agent matches queue=default (0 agents now): the job would wait'],
    ]);
  });
});
