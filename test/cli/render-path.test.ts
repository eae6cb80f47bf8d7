// What a `pipeline render` evaluates, held structurally (speed itself is measured by `npm run bench`,
// never asserted): the built bundle renders vLLM's template and test list with a preload script
// that records, at exit, the Node built-in modules loaded and the packages required. Another
// group's code (node vendors, the API client, fleet, upload) pulls in child_process, crypto, net,
// dgram, readline or fs/promises when it is evaluated; a render needs none of them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'dist/bundle/bin.js');
const VLLM = join(ROOT, 'test/fixtures/vllm');
const set = (JSON.parse(readFileSync(join(VLLM, 'variable-sets.json'), 'utf8')) as { sets: { defines: [string, string][] }[] }).sets[1]!;

const work = mkdtempSync(join(tmpdir(), 'bkci-render-path-'));
const preload = join(work, 'record.cjs');
writeFileSync(
  preload,
  `const Module = require('node:module');
const required = new Set();
const load = Module._load;
Module._load = function (request) { required.add(request); return load.apply(this, arguments); };
process.on('exit', () => {
  require('node:fs').writeFileSync(process.env.RECORD_OUT, JSON.stringify({
    builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length)),
    required: [...required],
    zod: globalThis.__zod_globalConfig !== undefined,
  }));
});
`,
);

interface Record_ {
  builtins: string[];
  required: string[];
  zod: boolean;
}

function recorded(args: string[]): { status: number | null; stdout: string; stderr: string; rec: Record_ } {
  const out = join(work, `rec-${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(process.execPath, ['-r', preload, BIN, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RECORD_OUT: out },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, rec: JSON.parse(readFileSync(out, 'utf8')) as Record_ };
}

const NOT_FOR_A_RENDER = ['child_process', 'crypto', 'net', 'dgram', 'readline', 'fs/promises', 'https', 'tls', 'http'];

describe('pipeline render evaluates only what it uses', () => {
  let render: ReturnType<typeof recorded>;
  beforeAll(() => {
    render = recorded([
      'pipeline',
      'render',
      join(VLLM, 'test-template-ci.j2'),
      join(VLLM, 'test-pipeline.yaml'),
      ...set.defines.flatMap(([k, v]) => ['-D', `${k}=${v}`]),
    ]);
  });

  it('renders (the recording changed nothing)', () => {
    expect(render.status, render.stderr).toBe(0);
    expect(render.stdout).toMatch(/^steps:/m);
    expect(render.rec.builtins).toContain('fs');
  });

  it("loads none of the Node modules only other groups' code needs", () => {
    expect(render.rec.builtins.filter((m) => NOT_FOR_A_RENDER.includes(m))).toEqual([]);
    expect(render.rec.required.filter((m) => /^(?:undici|execa|pino)$/.test(m))).toEqual([]);
  });

  it('(the check sees a node command load them)', () => {
    const r = recorded(['node', 'setup', '--help']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.rec.builtins.filter((m) => NOT_FOR_A_RENDER.includes(m)).length).toBeGreaterThan(0);
  });
});
