// `bkci fleet k8s`: Helm values for buildkite/agent-stack-k8s, one document per queue (one
// controller polls one queue). The GPU, CPU and memory of an agent become a resource class
// (requests = limits, applied to the job's command container) that is the controller's default;
// tolerations and the priority class go in the controller's pod-spec-patch, since a resource class
// cannot carry them.
import { vendorOf } from '../node/vendors/index.js';
import type { Fleet, Queue } from './model.js';
import { k8sMemory } from './model.js';

export const resourceClassOf = (q: Queue): string => q.k8s?.['resource-class'] ?? q.name;

// A CPU count as a Kubernetes quantity: whole CPUs as is, fractions in millicores.
function cpuQuantity(cpus: number): string {
  return Number.isInteger(cpus) ? String(cpus) : `${Math.round(cpus * 1000)}m`;
}

export interface HelmValues {
  config: Record<string, unknown>;
}

export function k8sValues(q: Queue): HelmValues {
  const amounts: Record<string, string> = {};
  // The vendor's extended resource (nvidia.com/gpu ...) and product label, from the node registry.
  const k8s = vendorOf(q.vendor)?.kubernetes;
  if (k8s && q.gpus > 0) amounts[k8s.resource] = String(q.gpus);
  if (q.cpus !== undefined) amounts.cpu = cpuQuantity(q.cpus);
  if (q.memoryBytes !== undefined) amounts.memory = k8sMemory(q.memoryBytes);
  const nodeSelector: Record<string, string> = { ...(q.k8s?.['node-selector'] ?? {}) };
  if (k8s?.productLabel && q.gpuProduct && !(k8s.productLabel in nodeSelector)) nodeSelector[k8s.productLabel] = q.gpuProduct;
  const rc: Record<string, unknown> = {};
  if (Object.keys(amounts).length) rc.resource = { requests: { ...amounts }, limits: { ...amounts } };
  if (Object.keys(nodeSelector).length) rc.nodeSelector = nodeSelector;
  const config: Record<string, unknown> = {
    queue: q.name,
    tags: [`queue=${q.name}`, ...q.tags.map(([k, v]) => `${k}=${v}`)],
  };
  if (q.k8s?.image) config.image = q.k8s.image;
  if (Object.keys(rc).length) {
    config['resource-classes'] = { [resourceClassOf(q)]: rc };
    config['default-resource-class-name'] = resourceClassOf(q);
  }
  const patch: Record<string, unknown> = {};
  if (q.k8s?.tolerations?.length) patch.tolerations = q.k8s.tolerations;
  if (q.k8s?.['priority-class']) patch.priorityClassName = q.k8s['priority-class'];
  if (Object.keys(patch).length) config['pod-spec-patch'] = patch;
  return { config };
}

// The multi-document YAML text: a comment naming each queue, then its values.
export async function k8sValuesYaml(fleet: Fleet, queues: Queue[]): Promise<string> {
  const { stringify } = await import('yaml');
  return queues
    .map(
      (q) =>
        `# agent-stack-k8s values for queue ${q.name} (from ${fleet.file})\n` +
        `# helm upgrade --install bkci-${q.name} oci://ghcr.io/buildkite/helm/agent-stack-k8s --set agentToken=... --values THIS\n` +
        stringify(k8sValues(q), { lineWidth: 0 }),
    )
    .join('---\n');
}
