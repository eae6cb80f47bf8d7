// The quick check (JSON Schema of the zod model) must say exactly what zod says: its schema file is
// current, and on real steps and thousands of random ones the two verdicts agree.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { allowedKeys, modelJsonSchemas, pipelineTop, STEP_MODELS, type StepType } from '../../src/pipeline/model.js';
import { stepPasses, topPasses } from '../../src/pipeline/precheck.js';
import { stepType } from '../../src/pipeline/validate.js';
import { randomFloats } from '../helpers/random.js';

const FIXTURES = join(import.meta.dirname, '../fixtures');

function agree(type: StepType, body: Record<string, unknown>): void {
  const zod = STEP_MODELS[type].safeParse(body).success;
  const quick = stepPasses(type, body);
  if (quick !== zod) expect({ type, body, quick }).toEqual({ type, body, quick: zod });
}

function stepsOf(v: unknown, out: unknown[] = []): unknown[] {
  const list = Array.isArray(v) ? v : v && typeof v === 'object' && Array.isArray((v as { steps?: unknown }).steps) ? (v as { steps: unknown[] }).steps : [];
  for (const s of list) {
    out.push(s);
    if (s && typeof s === 'object' && 'group' in s) stepsOf(s, out);
  }
  return out;
}

describe('the quick check', () => {
  it('is generated from the current zod model (npm run gen:model-schema)', () => {
    const file = JSON.parse(readFileSync(join(import.meta.dirname, '../../src/pipeline/model-schema.json'), 'utf8')) as unknown;
    expect(file).toEqual(JSON.parse(JSON.stringify(modelJsonSchemas())));
  });

  it('agrees with zod on every step of the vLLM renders, the official examples and the real-pipeline corpus', () => {
    const files = [
      ...readdirSync(join(FIXTURES, 'vllm/expected')).map((f) => join(FIXTURES, 'vllm/expected', f)),
      ...readdirSync(join(FIXTURES, 'buildkite/pipeline-examples')).map((f) => join(FIXTURES, 'buildkite/pipeline-examples', f)),
      ...readdirSync(join(FIXTURES, 'real-pipelines'), { recursive: true, encoding: 'utf8' })
        .filter((f) => /\.ya?ml$/.test(f))
        .map((f) => join(FIXTURES, 'real-pipelines', f)),
    ];
    let n = 0;
    for (const f of files) {
      for (const doc of YAML.parseAllDocuments(readFileSync(f, 'utf8'), { merge: true, uniqueKeys: false, strict: false })) {
        const v = doc.toJS({ maxAliasCount: -1 }) as unknown;
        if (v && typeof v === 'object' && !Array.isArray(v)) expect(topPasses(v as Record<string, unknown>), f).toBe(pipelineTop.safeParse(v).success);
        for (const s of stepsOf(v)) {
          if (!s || typeof s !== 'object' || Array.isArray(s)) continue;
          const t = stepType(s as Record<string, unknown>);
          if (!t) continue;
          agree(t.type, t.body);
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(500);
  });

  it('agrees with zod on thousands of random steps', () => {
    const rnd = randomFloats(Number(process.env.PRECHECK_SEED ?? 11));
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const scalars: unknown[] = [
      'x',
      '',
      'true',
      'false',
      '$N',
      '${A:-1}',
      'has space',
      '0b0e5d8e-7e45-4c6c-8f53-4d6f4b1d2a9c',
      'k'.repeat(101),
      '42g',
      '*',
      'passed',
      'failed',
      'running',
      0,
      1,
      -1,
      10,
      11,
      2.5,
      // eslint-disable-next-line no-loss-of-precision -- a number past 2^53 on purpose
      9007199254740993,
      -0,
      true,
      false,
      null,
    ];
    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 2 || r < 0.55) return pick(scalars);
      if (r < 0.8) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let k = Math.floor(rnd() * 3); k > 0; k--)
        o[
          pick([
            'exit_status',
            'limit',
            'signal',
            'step',
            'allow_failure',
            'queue',
            'label',
            'value',
            'text',
            'key',
            'slack',
            'paths',
            'setup',
            'with',
            'skip',
            'automatic',
            'manual',
            'allowed',
            'docker#v5',
            'branch',
            'x',
          ])
        ] = value(depth + 1);
      return o;
    };
    const bases: Record<StepType, Record<string, unknown>> = {
      command: { command: 'make' },
      wait: { wait: null },
      block: { block: 'Go?' },
      input: { input: 'Info' },
      trigger: { trigger: 'other' },
      group: { group: 'G', steps: [{ command: 'a' }] },
    };
    let n = 0;
    let valid = 0;
    for (let i = 0; i < 6000; i++) {
      const type = pick(Object.keys(bases) as StepType[]);
      const body: Record<string, unknown> = structuredClone(bases[type]);
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) body[rnd() < 0.95 ? pick(allowedKeys(type)) : 'not_a_property'] = value(0);
      agree(type, body);
      if (STEP_MODELS[type].safeParse(body).success) valid++;
      n++;
    }
    expect(n).toBe(6000);
    // Both verdicts are well represented.
    expect(valid).toBeGreaterThan(600);
    expect(n - valid).toBeGreaterThan(600);
  });
});
