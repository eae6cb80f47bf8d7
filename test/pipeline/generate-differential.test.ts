// `bkci pipeline generate --profile vllm` against vLLM's own generator (vllm-project/ci-infra
// buildkite/pipeline_generator at 3e4cfe4bf1f2fb4af37124cd83b1c6ee6bf73284), situation by situation,
// in temporary git repositories built from vLLM's test areas (test/fixtures/vllm-test-areas).
//
// Always: bkci's output equals the generator's output recorded in test/fixtures/vllm-generator/expected
// (recorded with os.walk sorted, so bkci runs with --file-order sorted).
// With BKCI_VLLM_GENERATOR=<a checkout of buildkite/pipeline_generator>: also runs the generator itself
// (through test/fixtures/vllm-generator/driver.py) in each repository and compares, in the file
// system's own listing order; BKCI_RECORD=1 rewrites the recorded outputs.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXPECTED, SITUATIONS, findPython, makeRepo, otelBundle, runBkci, runPython, type Repo, type RunOutput, type Situation } from './generate-harness.js';

const GENERATOR = process.env.BKCI_VLLM_GENERATOR;
const RECORD = process.env.BKCI_RECORD === '1';

interface Outcome {
  pipeline: unknown;
  docsOnly: boolean;
  calls: string[];
}

// What is compared: the parsed pipeline, the docs-only marker, and the annotation calls.
function outcome(r: RunOutput): Outcome {
  return {
    pipeline: r.pipeline === undefined ? null : parse(r.pipeline, { version: '1.1', maxAliasCount: -1 }),
    docsOnly: r.docsOnlyMarker,
    calls: r.calls
      .split('\n')
      .filter((l) => l.startsWith('buildkite-agent'))
      .sort(),
  };
}

function reset(repo: Repo): void {
  rmSync(join(repo.dir, '.buildkite', 'pipeline.yaml'), { force: true });
  rmSync(join(repo.dir, '.buildkite', '.docs_only'), { force: true });
  rmSync(join(dirname(repo.bin), 'calls.log'), { force: true });
}

const expectedFile = (s: Situation) => join(EXPECTED, `${s.name}.json`);

describe('generate --profile vllm reproduces the recorded output of vLLM generator', () => {
  it('has a recorded output for every situation (at least 12)', () => {
    expect(SITUATIONS.length).toBeGreaterThanOrEqual(12);
    for (const s of SITUATIONS) expect(existsSync(expectedFile(s)), `${s.name}: ${expectedFile(s)}`).toBe(true);
  });
  for (const s of SITUATIONS) {
    it(s.name, () => {
      if (!existsSync(expectedFile(s))) throw new Error(`no recorded output for ${s.name}`);
      const want = JSON.parse(readFileSync(expectedFile(s), 'utf8')) as Outcome;
      const repo = makeRepo(s);
      try {
        const r = runBkci(repo, ['--file-order', 'sorted']);
        expect(r.status, r.stderr).toBe(0);
        expect(outcome(r)).toEqual(want);
      } finally {
        repo.cleanup();
      }
    });
  }
});

if (GENERATOR)
  describe('generate --profile vllm equals vLLM generator run live (BKCI_VLLM_GENERATOR)', () => {
    const python = findPython();
    const extra: Situation[] = [
      { name: 'main-traced', branch: 'main', env: { BUILDKITE_COMMIT: 'abc123', BUILDKITE_PULL_REQUEST: 'false' }, changes: ['vllm/lora/x.py'] },
      {
        name: 'main-traced-synthetic',
        branch: 'main',
        env: { BUILDKITE_COMMIT: 'abc123', BUILDKITE_PULL_REQUEST: 'false' },
        changes: ['x/y.py'],
        synthetic: true,
      },
    ];
    for (const s of [...SITUATIONS, ...extra]) {
      it(
        s.name,
        () => {
          if (!python) throw new Error('no python3 with pydantic, click, requests, yaml (apt-get install python3-pydantic python3-click python3-requests)');
          const repo = makeRepo(s);
          try {
            const bundleArgs: string[] = [];
            if (s.name.startsWith('main-traced')) {
              const f = join(dirname(repo.bin), 'otel.b64');
              writeFileSync(f, otelBundle(python, GENERATOR!));
              bundleArgs.push('--otel-bundle', f);
            }
            const b = runBkci(repo, bundleArgs);
            reset(repo);
            const p = runPython(repo, python, GENERATOR!);
            expect(p.status, p.stderr).toBe(0);
            expect(b.status, b.stderr).toBe(0);
            expect(outcome(b)).toEqual(outcome(p));
            if (RECORD && !s.name.startsWith('main-traced')) {
              reset(repo);
              const sorted = outcome(runPython(repo, python, GENERATOR!, { BKCI_SORTED_WALK: '1' }));
              mkdirSync(EXPECTED, { recursive: true });
              writeFileSync(expectedFile(s), JSON.stringify(sorted) + '\n');
            }
          } finally {
            repo.cleanup();
          }
        },
        60_000,
      );
    }
  });
