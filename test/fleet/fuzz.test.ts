// Fuzzing the fleet file: mutated copies of the example fleets through every command that reads
// one (`fleet k8s`, `fleet elastic`, `pipeline validate --fleet`, `node setup --fleet --dry-run`).
// Every outcome is success or a named error, exit 1 or 2, with the place (file:line:col) for a
// bad fleet file: never a stack trace, "internal error", a hang or partial JSON on stdout.
// Fixed seed; BKCI_FUZZ_CASES=N runs N cases, BKCI_FUZZ_SEED another seed.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci, type CliRun } from '../helpers/io.js';
import { randomInts } from '../helpers/random.js';
import { hostEnv, HOSTS } from '../node/helpers.js';

const CASES = Number(process.env.BKCI_FUZZ_CASES ?? 150);
const SEED = Number(process.env.BKCI_FUZZ_SEED ?? 31_337);
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'fleet');
const SOURCES = ['example-fleet.yaml', 'vllm-fleet.yaml'].map((f) => readFileSync(join(FIXTURES, f), 'utf8'));

type Rand = (k: number) => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[r(xs.length)]!;

// Values for a YAML value slot: wrong types, out-of-range numbers, odd strings, YAML syntax.
const VALUES = [
  '',
  '~',
  'null',
  '-1',
  '0',
  '1.5',
  '1e400',
  '9007199254740993',
  'true',
  '"8"',
  '[]',
  '{}',
  '[1, 2',
  '{a: 1',
  '*nope',
  '&a x',
  '!!binary AAAA',
  '0x10',
  '128Q',
  '-4G',
  '99999999999T',
  'ｇｐｕ',
  "'it''s'",
  '"\\u0000"',
  '|',
  '>-',
  'x'.repeat(3000),
  'nvidia',
  'none',
  'NVIDIA-H100-80GB-HBM3',
  '{key: a, operator: Exists}',
  '[g6.12xlarge]',
];

// Keys that are valid somewhere, misspelt ones and odd ones.
const KEYS = [
  'vendor',
  'gpus',
  'cpus',
  'memory',
  'tags',
  'k8s',
  'elastic',
  'gpu-product',
  'vender',
  'gpu',
  'queues',
  'default-queue',
  '"a b"',
  '<<',
  '? x',
  '-',
];

function mutate(r: Rand, text: string): string {
  const lines = text.split('\n');
  const i = r(lines.length);
  const line = lines[i]!;
  switch (r(10)) {
    case 0: // a value replaced
      lines[i] = /:\s/.test(line) ? line.replace(/:\s.*$/, `: ${pick(r, VALUES)}`) : `${line} ${pick(r, VALUES)}`;
      break;
    case 1: // a key replaced
      lines[i] = line.replace(/^(\s*)[\w"-]+:/, (_m, sp: string) => `${sp}${pick(r, KEYS)}:`);
      break;
    case 2: // a line dropped
      lines.splice(i, 1);
      break;
    case 3: // a line duplicated (duplicate keys)
      lines.splice(i, 0, line);
      break;
    case 4: // indentation changed
      lines[i] = pick(r, ['', ' ', '\t', '      ']) + line.trimStart();
      break;
    case 5: // truncated
      return text.slice(0, r(text.length + 1));
    case 6: // a new queue or key at a random place
      lines.splice(i, 0, `${' '.repeat(2 * r(4))}${pick(r, KEYS)}: ${pick(r, VALUES)}`);
      break;
    case 7: {
      // a character flipped
      const at = r(text.length + 1);
      return text.slice(0, at) + String.fromCharCode(r(128)) + text.slice(at + 1);
    }
    case 8: // numbers changed
      return text.replace(/\b\d+\b/g, (d) => (r(3) === 0 ? pick(r, ['0', '-1', '65537', '1e9', String(Number(d) * 7)]) : d));
    default: // the whole file something else
      return pick(r, ['', '---\n', '[]', 'queues: []', 'queues:\n', 'queues: {h100: }', '\u0000', 'a: b: c', 'queues: {x: {vendor: nvidia}}\nqueues: {}']);
  }
  return lines.join('\n');
}

function judge(res: CliRun, what: string): void {
  expect([0, 1, 2], `${what}\n${res.stderr}`).toContain(res.code);
  expect(res.stderr, what).not.toMatch(/internal error|Maximum call stack|\n\s+at .+:\d+:\d+/);
  if (res.code === 2) expect(res.stderr, what).toMatch(/^bkci: \S/m);
  // Plain words, not zod's ("Too small: expected number to be >0", "expected record").
  expect(res.stderr, what).not.toMatch(/Too (small|big):|expected (record|object)\b/);
}

const PIPELINE = 'steps:\n  - label: a\n    command: "true"\n    agents: {queue: h100}\n  - label: b\n    command: "true"\n';

describe('fuzz: fleet files', () => {
  it(`${CASES} mutated fleet files through fleet k8s/elastic, validate --fleet and node setup --fleet (seed ${SEED})`, async () => {
    const r = randomInts(SEED);
    const dir = mkdtempSync(join(tmpdir(), 'bkci-fleetfuzz-'));
    const pipeline = join(dir, 'pipeline.yml');
    writeFileSync(pipeline, PIPELINE);
    const outcomes = new Map<number, number>();
    for (let n = 0; n < CASES; n++) {
      let text = pick(r, SOURCES);
      for (let k = 1 + r(2); k > 0; k--) text = mutate(r, text);
      const file = join(dir, `fleet-${n}.yaml`);
      writeFileSync(file, text);
      const queue = /^ {2}([\w.-]+):/m.exec(text)?.[1] ?? 'h100';
      const what = `case ${n} (seed ${SEED}):\n${text.slice(0, 2000)}`;
      let res: CliRun;
      switch (r(4)) {
        case 0:
          res = await runBkci(['fleet', 'k8s', file, '--json']);
          break;
        case 1:
          res = await runBkci(['fleet', 'elastic', file, '--queue', queue]);
          break;
        case 2:
          res = await runBkci(['pipeline', 'validate', pipeline, '--fleet', file]);
          break;
        default:
          res = await runBkci(
            [
              'node',
              'setup',
              '--fleet',
              file,
              '--queue',
              queue,
              '--host-root',
              HOSTS.h100,
              '--root',
              join(dir, 'root'),
              '--agent-bin',
              '/bin/true',
              '--dry-run',
              '--json',
            ],
            { env: hostEnv(HOSTS.h100, { BUILDKITE_AGENT_TOKEN: 'bkat_fleetFuzzToken' }) },
          );
          expect(res.stdout + res.stderr, what).not.toContain('bkat_fleetFuzzToken');
      }
      judge(res, what);
      if (res.code === 0 && res.stdout.trimStart().startsWith('{')) expect(() => JSON.parse(res.stdout), what).not.toThrow();
      // A fleet file refused as input names its place.
      if (res.code === 2 && /fleet-\d+\.yaml/.test(res.stderr)) expect(res.stderr, what).toMatch(/fleet-\d+\.yaml(:\d+:\d+)?/);
      outcomes.set(res.code, (outcomes.get(res.code) ?? 0) + 1);
    }
    // The mutations reach both the accepted and the refused side.
    expect(outcomes.get(2) ?? 0).toBeGreaterThan(CASES / 10);
    expect((outcomes.get(0) ?? 0) + (outcomes.get(1) ?? 0)).toBeGreaterThan(CASES / 30);
  }, 120_000);
});
