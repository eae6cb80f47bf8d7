// Real pipelines from public repositories and Buildkite's documentation (test/fixtures/real-pipelines,
// sources and licences in its SOURCES.md): Buildkite accepts every one, so `bkci pipeline validate`
// must too (exit 0, no error finding).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';

const CORPUS = join(import.meta.dirname, '../fixtures/real-pipelines');

function pipelines(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) pipelines(p, out);
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}

const files = pipelines(CORPUS);
const project = (f: string) => relative(CORPUS, f).split('/').slice(0, 2).join('/');

describe('the real-pipeline corpus', () => {
  it('holds 100+ pipelines from 20+ projects, each listed in SOURCES.md with a licence beside it', () => {
    expect(files.length).toBeGreaterThanOrEqual(100);
    const projects = new Set(files.map(project));
    expect(projects.size).toBeGreaterThanOrEqual(20);
    const sources = readFileSync(join(CORPUS, 'SOURCES.md'), 'utf8');
    for (const f of files) expect(sources, relative(CORPUS, f)).toContain(`| \`${relative(CORPUS, f)}\` |`);
    for (const p of projects) expect(statSync(join(CORPUS, p, 'LICENSE')).isFile(), p).toBe(true);
  });

  it.each(files.map((f) => [relative(CORPUS, f), f]))('%s is accepted by bkci pipeline validate', async (_name, f) => {
    const r = await runBkci(['pipeline', 'validate', f, '--json']);
    expect(r.stderr.split('\n').filter((l) => /error/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { valid: boolean; findings: { severity: string }[] };
    expect(report.valid).toBe(true);
    expect(report.findings.filter((x) => x.severity === 'error')).toEqual([]);
  });
});
