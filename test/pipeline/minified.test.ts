// The engine must not depend on how its code is written: a minifier renames every parameter and
// local (a filter's signature once came from its source text, and a minified bundle failed vLLM's
// render with "filter split takes at most 0"). The whole CLI is bundled here with esbuild's
// --minify and renders vLLM's template byte for byte as the normal bundle does.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { filterNames, filterSignature } from '../../src/pipeline/jinja/filters.js';
import { BIN, ROOT, runNode, vllmExpected, vllmRenderArgs, vllmSets } from '../helpers/vllm-render.js';

// Inside the checkout, so the bundle's external packages resolve from node_modules.
const OUT = join(ROOT, 'node_modules/.cache/bkci-minified');
const MINIFIED = join(OUT, 'bkci.cjs');
const START = ['-e', 'require(process.argv[1]).start(process.argv.slice(2)).then((c) => { process.exitCode = c; })', MINIFIED];
const minified = (args: string[]) => runNode(START, args);
const normal = (args: string[]) => runNode([BIN], args);

describe('a minified bundle of the CLI', () => {
  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    await build({
      absWorkingDir: ROOT,
      entryPoints: ['src/cli/start.ts'],
      outfile: MINIFIED,
      bundle: true,
      minify: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      logLevel: 'silent',
      supported: { 'dynamic-import': false },
      external: ['undici', 'execa', 'pino', 'yaml'],
      define: { 'import.meta.url': '__bkciUrl', __BKCI_VERSION__: '"0.0.0-minified"' },
      banner: { js: 'var __bkciUrl = require("node:url").pathToFileURL(__filename).href;' },
    });
  }, 60_000);

  it('renames the filters’ parameters (the bundle really is minified)', () => {
    const src = readFileSync(MINIFIED, 'utf8');
    expect(src).not.toMatch(/a\.get\(0, ?["']split["']\)/);
    expect(src).not.toMatch(/function applyFilter\(name,/);
    expect(src).not.toMatch(/function parseTemplate\(/);
  });

  it.each(vllmSets.map((s) => [s.name, s] as const))('renders vLLM %s byte for byte as the normal bundle does', (_n, set) => {
    const args = vllmRenderArgs(set);
    const m = minified(args);
    expect(m.status, m.stderr).toBe(0);
    const n = normal(args);
    expect(n.status, n.stderr).toBe(0);
    expect(m.stdout).toBe(n.stdout);
    expect(m.stdout).toBe(vllmExpected(set));
  });

  it('checks filter arguments the same way: too many, and unknown keywords', () => {
    for (const [tpl, msg] of [
      ['{{ "a b" | split(" ", 1, 2) }}', 'filter split takes at most 2'],
      ['{{ "a" | center(width=3, nope=1) }}', 'filter center has no argument named nope'],
      ['{{ "a" | upper(1) }}', 'filter upper takes at most 0'],
    ]) {
      const args = ['pipeline', 'render', '-', '--no-validate'];
      const m = spawnSync(
        process.execPath,
        ['-e', 'require(process.argv[1]).start(process.argv.slice(2)).then((c) => { process.exitCode = c; })', MINIFIED, ...args],
        {
          encoding: 'utf8',
          input: tpl,
        },
      );
      expect(m.status, tpl).toBe(2);
      expect(m.stderr).toContain(msg!);
    }
  });
});

describe('filter signatures', () => {
  it('every filter declares one', () => {
    for (const name of filterNames()) expect(filterSignature(name), name).toBeDefined();
  });
});
