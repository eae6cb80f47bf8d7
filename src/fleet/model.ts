// The fleet file (`fleet.yaml`): every queue described once, for the three places agents come from
// (systemd hosts set up by `bkci node setup`, buildkite/agent-stack-k8s, the Elastic CI Stack for
// AWS). docs/fleet.md is the reference; this is its model.
import * as z from 'zod';

import { NONE, vendorIds } from '../node/vendors/index.js';

// The vendors of the node registry (src/node/vendors): a new vendor there is one here too.
export const VENDORS = vendorIds() as [string, ...string[]];
export type FleetVendor = string;
// CPU-only agents.
export const NO_GPU = NONE.id;

// A queue name as an agent tag value: what Buildkite and the k8s controller accept without quoting.
export const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
// Tag keys and values end up in `k=v` lists (agent tags, BuildkiteAgentTags): no `,`, `=` in keys,
// no white space or control characters.
const TAG_KEY = /^[A-Za-z0-9_.:/-]{1,100}$/;
const TAG_VALUE = /^[^\s,=\p{Cc}]{0,200}$/u;
// Memory as systemd and Kubernetes write it: 128G, 128Gi, 512M, 4096 (bytes). K/M/G/T and Ki/Mi/Gi/Ti
// are both powers of 1024 here, as systemd reads them (docs/fleet.md).
export const MEMORY = /^(\d+(?:\.\d+)?)\s*(|K|Ki|M|Mi|G|Gi|T|Ti)B?$/;

const tagValue = z.union([z.string(), z.number(), z.boolean()]).transform(String).pipe(z.string().regex(TAG_VALUE, 'a tag value has no spaces, commas or `=`'));

const k8s = z
  .object({
    'node-selector': z.record(z.string(), z.string()).optional(),
    tolerations: z
      .array(
        z
          .object({
            key: z.string().optional(),
            operator: z.enum(['Exists', 'Equal']).optional(),
            value: z.string().optional(),
            effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
            tolerationSeconds: z.number().int().optional(),
          })
          .strict(),
      )
      .optional(),
    image: z.string().min(1).optional(),
    'priority-class': z.string().min(1).optional(),
    // The resource class the chart defines for this queue (default: the queue's name).
    'resource-class': z.string().regex(QUEUE_NAME, 'a resource class name is letters, digits, `_`, `.`, `:` or `-`').optional(),
  })
  .strict();

const elastic = z
  .object({
    'instance-types': z
      .array(z.string().regex(/^[\w.-]+$/, 'an EC2 instance type such as g6.12xlarge'))
      .min(1)
      .max(25, 'the stack takes at most 25 instance types'),
    'gpus-per-instance': z.number().int().min(0),
    min: z.number().int().min(0).default(0),
    max: z.number().int().min(0),
    // Percentage of instances launched as Spot (the stack's OnDemandPercentage is the rest).
    spot: z.number().int().min(0).max(100).default(0),
    // The SSM Parameter Store path (or ARN) of the agent token: never the token itself.
    'token-parameter': z
      .string()
      .regex(/^\/[A-Za-z0-9_.\-/]+$|^arn:aws:ssm:[a-z0-9-]+:\d{12}:parameter\/[A-Za-z0-9_.\-/]+$/, 'an SSM parameter path (/buildkite/agent-token) or ARN')
      .optional(),
    'image-id': z.string().min(1).optional(),
  })
  .strict();

export const queueModel = z
  .object({
    vendor: z.enum(VENDORS),
    // GPUs per agent (per job). Default: 1 for a GPU vendor, 0 for `none`.
    gpus: z.number().int().min(0).max(64).optional(),
    'gpu-product': z.string().min(1).optional(),
    cpus: z.number().positive().max(4096).optional(),
    memory: z.union([z.string().regex(MEMORY, 'a size such as 128G, 64Gi or 512M'), z.number().int().positive()]).optional(),
    tags: z.record(z.string().regex(TAG_KEY, 'a tag name is letters, digits, `_`, `.`, `:`, `/` or `-`'), tagValue).optional(),
    k8s: k8s.optional(),
    elastic: elastic.optional(),
  })
  .strict();

export const fleetModel = z
  .object({
    queues: z.record(z.string().regex(QUEUE_NAME, 'a queue name is letters, digits, `_`, `.`, `:` or `-` (at most 100)'), queueModel),
    // The queue a step without `agents.queue` goes to (Buildkite's default queue is `default`).
    'default-queue': z.string().optional(),
  })
  .strict();

export type QueueSpec = z.output<typeof queueModel>;

export interface Queue {
  name: string;
  vendor: FleetVendor;
  gpus: number;
  gpuProduct: string | undefined;
  cpus: number | undefined;
  memoryBytes: number | undefined;
  tags: [string, string][];
  k8s: QueueSpec['k8s'];
  elastic: QueueSpec['elastic'];
}

export interface Fleet {
  file: string;
  queues: Map<string, Queue>;
  defaultQueue: string;
}

export function memoryBytes(v: string | number): number {
  if (typeof v === 'number') return v;
  const m = MEMORY.exec(v.trim())!;
  const unit = m[2]!.replace('i', '');
  const pow = ['', 'K', 'M', 'G', 'T'].indexOf(unit);
  return Math.round(Number(m[1]) * 1024 ** pow);
}

// Kubernetes' binary form of a byte count: the largest unit that divides it exactly.
export function k8sMemory(bytes: number): string {
  for (const [unit, pow] of [
    ['Ti', 4],
    ['Gi', 3],
    ['Mi', 2],
    ['Ki', 1],
  ] as const)
    if (bytes % 1024 ** pow === 0) return `${bytes / 1024 ** pow}${unit}`;
  return String(bytes);
}

export function toQueue(name: string, spec: QueueSpec): Queue {
  return {
    name,
    vendor: spec.vendor,
    gpus: spec.gpus ?? (spec.vendor === NO_GPU ? 0 : 1),
    gpuProduct: spec['gpu-product'],
    cpus: spec.cpus,
    memoryBytes: spec.memory === undefined ? undefined : memoryBytes(spec.memory),
    tags: Object.entries(spec.tags ?? {}),
    k8s: spec.k8s,
    elastic: spec.elastic,
  };
}
