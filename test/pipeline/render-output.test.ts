// `pipeline render -o PATH` through the CLI: in-process with a test Io, and through the real bin
// where the process's own descriptors matter (/dev/stdout).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'dist/bundle/bin.js');
const TEMPLATE = 'steps:\n  - command: "echo {{ who }}"\n';

function setup(): string {
  const d = mkdtempSync(join(tmpdir(), 'bkci-render-o-'));
  writeFileSync(join(d, 't.j2'), TEMPLATE);
  return d;
}

describe('pipeline render -o', () => {
  it('writes a file, then writes nothing when nothing changed', async () => {
    const d = setup();
    const r = await runBkci(['pipeline', 'render', 't.j2', '-D', 'who=me', '-o', 'out/p.yml', '--log-level', 'info'], { cwd: d });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(readFileSync(join(d, 'out/p.yml'), 'utf8')).toBe('steps:\n  - command: "echo me"\n');
    const m = statSync(join(d, 'out/p.yml')).mtimeMs;
    const again = await runBkci(['pipeline', 'render', 't.j2', '-D', 'who=me', '-o', 'out/p.yml', '--log-level', 'info'], { cwd: d });
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('unchanged');
    expect(statSync(join(d, 'out/p.yml')).mtimeMs).toBe(m);
  });

  it('-o - is standard output', async () => {
    const d = setup();
    const r = await runBkci(['pipeline', 'render', 't.j2', '-D', 'who=me', '-o', '-'], { cwd: d });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('steps:\n  - command: "echo me"\n');
  });

  it('a directory or a 100 KB name is exit 2 naming the path, not an internal error', async () => {
    const d = setup();
    mkdirSync(join(d, 'adir'));
    const r = await runBkci(['pipeline', 'render', 't.j2', '-o', 'adir'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-o adir: cannot write the output: it is a directory/);
    expect(r.stderr).not.toMatch(/internal error|EISDIR|\n\s+at /);
    const long = await runBkci(['pipeline', 'render', 't.j2', '-o', 'x'.repeat(100_000)], { cwd: d });
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/the name is too long/);
    expect(long.stderr).not.toMatch(/internal error|ENAMETOOLONG/);
  });

  it('the real bin: -o /dev/stdout writes to its standard output (a pipe here) and ends; -o /dev/null stays a device', () => {
    const d = setup();
    const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: d, encoding: 'utf8', timeout: 30_000 });
    const r = run(['pipeline', 'render', 't.j2', '-D', 'who=me', '-o', '/dev/stdout']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('steps:\n  - command: "echo me"\n');
    const n = run(['pipeline', 'render', 't.j2', '-D', 'who=me', '-o', '/dev/null']);
    expect(n.status, n.stderr).toBe(0);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });
});
