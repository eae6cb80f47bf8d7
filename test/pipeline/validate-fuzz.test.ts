// Fuzzing `pipeline validate` (issue 15): mutated pipeline YAML, from seeds written like vLLM's
// renders and Buildkite's documented examples, the bundled template's render, and any pipeline
// YAML under test/fixtures. Fixed seed; BKCI_FUZZ_CASES=N runs more. Every case must end as a
// verdict with located findings in bkci's words (exit 0 or 1 through the CLI), never an internal
// error, a stack overflow, a hang or runaway memory; where the fast parser reads a text, npm
// yaml's path must read the same values. DATA files get the same treatment (exit 0 or 2).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { validatePipelineText } from '../../src/pipeline/validate.js';
import { loadPipelineYaml } from '../../src/pipeline/yaml-load.js';
import { parseDataFile } from '../../src/pipeline/data.js';
import { fastParseYaml } from '../../src/util/fast-yaml.js';
import { InputError } from '../../src/util/errors.js';
import { randomInts } from '../helpers/random.js';
import { runBkci } from '../helpers/io.js';

const CASES = Number(process.env.BKCI_FUZZ_CASES ?? 2000);
const GIB = 2 ** 30;

const SEEDS: string[] = [
  // As vLLM's CI template renders (multi-line quoted commands continuing below their key's indentation).
  `steps:
- label: ":docker: build image"
  key: image-build
  depends_on: ~
  agents:
    queue: cpu_queue_premerge
  commands:
  - "aws ecr-public get-login-password --region us-east-1 | docker login --username AWS --password-stdin public.ecr.aws/q9t5s3a7"
  - "docker build --build-arg max_jobs=16 --build-arg USE_SCCACHE=1 --tag public.ecr.aws/q9t5s3a7/vllm-ci-test-repo:$BUILDKITE_COMMIT
    --target test --progress plain -f docker/Dockerfile ."
  env:
    DOCKER_BUILDKIT: "1"
  retry:
    automatic:
      - exit_status: -1  # Agent was lost
        limit: 2
      - exit_status: -10  # Agent was lost
        limit: 2
- block: "Run Basic Correctness Test"
  depends_on: image-build
  key: block-basic-correctness-test
- label: "Basic Correctness Test"
  depends_on: block-basic-correctness-test
  soft_fail: false
  agents:
    queue: gpu_1_queue
  plugins:
  - docker#v5.2.0:
      image: public.ecr.aws/q9t5s3a7/vllm-ci-test-repo:$BUILDKITE_COMMIT
      always-pull: true
      propagate-environment: true
      gpus: all
      command: ["bash", "-xc", "(command nvidia-smi || true) && export VLLM_LOGGING_LEVEL=DEBUG && export VLLM_ALLOW_DEPRECATED_BEAM_SEARCH=1 && cd /vllm-workspace/tests && pytest -v -s basic_correctness/test_cumem.py"]
      environment:
      - VLLM_USAGE_SOURCE=ci-test
      - HF_TOKEN
      volumes:
      - /dev/shm:/dev/shm
      - /fsx/hf_cache:/fsx/hf_cache
`,
  // Buildkite's documented shapes: groups, matrix, block fields, trigger, notify, anchors and merges.
  `x-defaults: &defaults
  agents: {queue: default}
  timeout_in_minutes: 30
  env: &env
    LANG: C.UTF-8
steps:
  - group: ":lock_with_ink_pen: Security"
    key: security
    steps:
      - <<: *defaults
        label: ":crystal_ball: Brakeman"
        command: ".buildkite/steps/brakeman"
        plugins:
          - docker-compose#v4.14.0:
              run: app
      - label: audit
        commands: |
          bundle exec bundle-audit check --update
          echo done
  - wait: ~
    continue_on_failure: true
  - block: ":rocket: Release"
    prompt: "Fill out the details"
    fields:
      - select: "Stream"
        key: "release-stream"
        options:
          - label: "Beta"
            value: "beta"
          - label: "Stable"
            value: "stable"
      - text: "Notes"
        key: notes
        required: false
  - label: "{{matrix.os}} {{matrix.arch}}"
    command: "make test"
    env:
      <<: *env
      EXTRA: "1"
    matrix:
      setup:
        os: [linux, darwin]
        arch: [amd64, arm64]
      adjustments:
        - with: {os: darwin, arch: amd64}
          skip: "not supported"
  - trigger: deploy-pipeline
    label: ":rocket: Deploy"
    async: true
    build:
      message: "\${BUILDKITE_MESSAGE}"
      commit: "\${BUILDKITE_COMMIT}"
      env:
        RELEASE: "1"
  - input: "Information please"
    fields:
      - text: "Name"
        key: name
notify:
  - email: "dev@example.com"
  - slack: "#builds"
    if: build.state == "failed"
`,
  // Compact and flow forms, block scalars, multiple documents.
  `---
steps:
- {label: a, command: "echo a", key: a}
- {label: b, commands: [echo b, "echo c"], depends_on: [a], parallelism: 2}
- wait
- label: >-
    folded
    label
  command: |+
    line one

    line three
  if: build.branch == "main" && build.message !~ /skip/
...
---
- command: echo second
  artifact_paths: ["out/**/*", 'logs/*.txt']
  cancel_on_build_failing: true
  priority: -1
  concurrency: 1
  concurrency_group: "deploy/prod"
`,
];

// Pipeline YAML already under test/fixtures (other suites add some), as more seeds.
function fixtureSeeds(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(n) && st.size < 200_000) {
        const text = readFileSync(p, 'utf8');
        if (/^\s*(?:-\s|steps:)/m.test(text)) out.push(text);
      }
    }
  };
  walk(join(import.meta.dirname, '../fixtures'));
  return out;
}

// Fragments a mutation inserts: YAML's indicators, anchors, aliases, merges, escapes, nesting.
const FRAGMENTS = [
  ':',
  ': ',
  '- ',
  '-',
  '[',
  ']',
  '{',
  '}',
  ',',
  '#',
  ' #',
  '&a ',
  '*a',
  '*b',
  '&b ',
  '<<: *a\n',
  '<<: [*a, *b]\n',
  '<<: 1',
  '<<: ~',
  '? ',
  '? [a]\n: b\n',
  '!!str ',
  '!!int ',
  '!foo ',
  '%YAML 1.2\n',
  '---\n',
  '...\n',
  '|',
  '>-',
  '|2',
  '"',
  "'",
  '\\',
  '"\\UFFFFFFFF"',
  '"\\uD800"',
  '"\\x41\\t"',
  '\t',
  '\n',
  '\r\n',
  '  ',
  '\u00a0',
  '\ufeff',
  '\u2028',
  '~',
  'null',
  'true',
  '0x1F',
  '1e3',
  '.inf',
  '__proto__',
  'constructor',
  '${VAR:-x}',
  '@',
  '`',
  '%',
];

function mutate(seed: string, next: (k: number) => number): string {
  let s = seed;
  const n = 1 + next(4);
  for (let m = 0; m < n; m++) {
    const at = next(s.length + 1);
    switch (next(12)) {
      case 0: // delete a range
        s = s.slice(0, at) + s.slice(at + 1 + next(20));
        break;
      case 1:
      case 2:
      case 3: // insert a fragment
        s = s.slice(0, at) + FRAGMENTS[next(FRAGMENTS.length)] + s.slice(at);
        break;
      case 4: {
        // duplicate, drop or swap lines
        const lines = s.split('\n');
        const i = next(lines.length);
        const j = next(lines.length);
        const k = next(3);
        if (k === 0) lines.splice(i, 0, lines[j]!);
        else if (k === 1) lines.splice(i, 1);
        else [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        s = lines.join('\n');
        break;
      }
      case 5: {
        // re-indent a line
        const lines = s.split('\n');
        const i = next(lines.length);
        const d = next(5) - 2;
        lines[i] = d > 0 ? ' '.repeat(d) + lines[i] : lines[i]!.slice(-d);
        s = lines.join('\n');
        break;
      }
      case 6: // truncate
        s = s.slice(0, at);
        break;
      case 7: {
        // copy a chunk elsewhere
        const from = next(s.length + 1);
        s = s.slice(0, at) + s.slice(from, from + next(200)) + s.slice(at);
        break;
      }
      case 8: {
        // put an anchor on a value and an alias or merge of it further down
        const lines = s.split('\n');
        const i = next(lines.length);
        const line = lines[i]!;
        const c = line.indexOf(': ');
        if (c > 0) lines[i] = `${line.slice(0, c + 2)}&a ${line.slice(c + 2)}`;
        const j = i + 1 + next(Math.max(1, lines.length - i));
        const ind = /^ */.exec(lines[Math.min(j, lines.length - 1)] ?? '')![0];
        lines.splice(j, 0, next(2) ? `${ind}<<: *a` : `${ind}x: *a`);
        s = lines.join('\n');
        break;
      }
      case 9: {
        // rare: a deep nest, or a bomb
        const r = next(40);
        if (r === 0) s = s.slice(0, at) + '['.repeat(1000 + next(5000)) + s.slice(at);
        else if (r === 1) s = s.slice(0, at) + '- '.repeat(1000 + next(3000)) + 'x\n' + s.slice(at);
        else if (r === 2) {
          let b = 'b0: &b0 [x, x, x, x, x, x, x, x]\n';
          for (let l = 1; l < 12; l++)
            b += `b${l}: &b${l} [${Array(8)
              .fill(`*b${l - 1}`)
              .join(', ')}]\n`;
          s = b + s;
        } else if (r === 3) {
          let b = 'm0: &m0 {k: v}\n';
          for (let l = 1; l < 30; l++) b += `m${l}: &m${l} {<<: [*m${l - 1}, *m${l - 1}]}\n`;
          s = b + s;
        } else s = s.slice(0, at) + s.slice(at).toUpperCase();
        break;
      }
      case 10: // replace a character with a random printable one (or a control character)
        s = s.slice(0, at) + String.fromCharCode(next(4) === 0 ? next(32) : 32 + next(95)) + s.slice(at + 1);
        break;
      default: {
        // wrap a value in a flow collection
        const c = s.indexOf(': ', at);
        if (c >= 0) {
          const e = s.indexOf('\n', c);
          const end = e < 0 ? s.length : e;
          s = `${s.slice(0, c + 2)}[${s.slice(c + 2, end)}]${s.slice(end)}`;
        }
      }
    }
  }
  return s;
}

const LIBRARY_TEXT =
  /parseAllDocuments|mapAsMap|Implicit map keys|Nested mappings|Map keys must be unique|Symbol\(|This should not happen|internal error|\[object Object\]|Maximum call stack/i;

let seeds: string[] = [];
beforeAll(async () => {
  // The bundled template's render of the example test list.
  const root = join(import.meta.dirname, '../..');
  const r = await runBkci(['pipeline', 'render', join(root, 'templates/default.j2'), join(root, 'examples/test-pipeline.yaml'), '--run-all', '--no-validate'], {
    cwd: root,
  });
  expect(r.code).toBe(0);
  seeds = [...SEEDS, r.stdout, ...fixtureSeeds()];
});

describe('pipeline validate on mutated YAML', () => {
  it('every seed is a valid pipeline to start from', async () => {
    for (const s of SEEDS) {
      const v = await validatePipelineText(s);
      expect(
        v.findings.filter((f) => f.severity === 'error'),
        s.slice(0, 60),
      ).toEqual([]);
    }
  });

  it(`${CASES} cases: a verdict with located findings in bkci's words; fast parser and npm yaml agree`, async () => {
    const next = randomInts(15_2026);
    let fastRead = 0;
    let rejected = 0;
    let peak = 0;
    for (let c = 0; c < CASES; c++) {
      const text = mutate(seeds[next(seeds.length)]!, next);
      let v: Awaited<ReturnType<typeof validatePipelineText>>;
      try {
        v = await validatePipelineText(text);
      } catch (err) {
        throw new Error(`case ${c} threw ${String(err)}:\n${text.slice(0, 2000)}`, { cause: err });
      }
      for (const f of v.findings) {
        expect(f.line, `case ${c}: ${f.message}`).toBeGreaterThanOrEqual(1);
        expect(f.col, `case ${c}: ${f.message}`).toBeGreaterThanOrEqual(1);
        expect(f.message, `case ${c}`).not.toMatch(LIBRARY_TEXT);
        expect(f.message.length, `case ${c}`).toBeGreaterThan(3);
      }
      expect(v.valid, `case ${c}`).toBe(!v.findings.some((f) => f.severity === 'error'));
      if (!v.valid) rejected++;
      // The fast parser and the npm yaml path: where the fast parser reads a text, the other reads
      // it too, to the same values.
      const fast = fastParseYaml(text);
      if (fast) {
        fastRead++;
        const slow = loadPipelineYaml(text);
        expect(slow.errors, `case ${c}: npm yaml's path refuses what the fast parser read:\n${text}`).toEqual([]);
        if (
          !isDeepStrictEqual(
            slow.docs.map((d) => d.value),
            fast.docs,
          )
        )
          expect(
            slow.docs.map((d) => d.value),
            `case ${c}:\n${text}`,
          ).toEqual(fast.docs);
      }
      if (c % 100 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    // The mix: some cases read by each parser, some accepted, many refused.
    expect(fastRead).toBeGreaterThan(CASES / 20);
    expect(rejected).toBeGreaterThan(CASES / 10);
    expect(rejected).toBeLessThan(CASES);
    expect(peak).toBeLessThan(GIB);
  }, 600_000);

  it('through the CLI: exit 0 or 1, findings as file:line:col, nothing else on stderr', async () => {
    const next = randomInts(7_15);
    const n = Math.max(60, Math.floor(CASES / 25));
    for (let c = 0; c < n; c++) {
      const text = mutate(seeds[next(seeds.length)]!, next);
      const r = await runBkci(['pipeline', 'validate', '-'], { stdin: text });
      expect([0, 1], `case ${c}: ${r.stderr}\n${text.slice(0, 500)}`).toContain(r.code);
      for (const line of r.stderr.split('\n').filter(Boolean)) {
        expect(line, `case ${c}`).toMatch(/^(?:<stdin>:\d+:\d+: |bkci: <stdin> is invalid$)/);
        expect(line).not.toMatch(LIBRARY_TEXT);
      }
    }
  }, 600_000);
});

describe('pipeline render DATA on mutated YAML, JSON and JSON5', () => {
  it(`${Math.floor(CASES / 2)} cases: a value, or an error naming file:line:col (exit 2)`, () => {
    const yamlSeed = readFileSync(join(import.meta.dirname, '../../examples/test-pipeline.yaml'), 'utf8');
    const jsonSeed = JSON.stringify({ steps: [{ label: 'a', commands: ['x', 'y'], env: { A: '1' }, n: 1.5, m: [1, [2, { k: null }]] }] }, null, 2);
    const next = randomInts(2_15);
    let read = 0;
    for (let c = 0; c < Math.floor(CASES / 2); c++) {
      const kind = next(3);
      const name = ['d.yaml', 'd.json', 'd.json5'][kind]!;
      const text = mutate(kind === 0 ? yamlSeed : jsonSeed, next);
      try {
        parseDataFile(text, name);
        read++;
      } catch (err) {
        expect(err, `case ${c}: ${String(err)}\n${text.slice(0, 500)}`).toBeInstanceOf(InputError);
        const msg = (err as Error).message;
        expect(msg, `case ${c}`).toMatch(new RegExp(`^${name.replace('.', '\\.')}(?::\\d+:\\d+)?: `));
        expect(msg, `case ${c}`).not.toMatch(LIBRARY_TEXT);
      }
    }
    expect(read).toBeGreaterThan(0);
    expect(process.memoryUsage().rss).toBeLessThan(GIB);
  }, 600_000);
});
