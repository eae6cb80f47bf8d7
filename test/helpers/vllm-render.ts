// What the tests that run a bkci bundle as a process share: the checkout's paths, vLLM's variable
// sets (test/fixtures/vllm) with the `pipeline render` arguments bootstrap.sh used for each and
// the output expected, and a Node process with only PATH from the environment.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'dist/bundle/bin.js');
export const VLLM = join(ROOT, 'test/fixtures/vllm');

export interface VariableSet {
  name: string;
  defines: [string, string][];
}

export const vllmSets: VariableSet[] = (JSON.parse(readFileSync(join(VLLM, 'variable-sets.json'), 'utf8')) as { sets: VariableSet[] }).sets;

// `pipeline render` of vLLM's CI template and test list with a set's variables, blank lines
// stripped (as bootstrap.sh did), and the pipeline it must print.
export const vllmRenderArgs = (set: VariableSet): string[] => [
  'pipeline',
  'render',
  join(VLLM, 'test-template-ci.j2'),
  join(VLLM, 'test-pipeline.yaml'),
  '--strip-blank-lines',
  ...set.defines.flatMap(([k, v]) => ['-D', `${k}=${v}`]),
];
export const vllmExpected = (set: VariableSet): string => readFileSync(join(VLLM, `expected/${set.name}.pipeline.yaml`), 'utf8');

// Node running `entry` (a script, or -e CODE ...) with `args`, only PATH (and `env`) in its environment.
export const runNode = (entry: string[], args: string[], opts: { env?: Record<string, string>; input?: string } = {}) =>
  spawnSync(process.execPath, [...entry, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env },
    input: opts.input,
    maxBuffer: 64 << 20,
  });
