// Input that is not what a pipeline, template or DATA file should be, through the CLI as a user runs
// it (black-box cases found outside the repository's fixtures): bytes that are not UTF-8, control
// characters YAML readers refuse, characters Jinja names cannot hold, --dry-run directories the
// system will not create. Every outcome is exit 1 or 2 with the place named, never a hang, an
// "internal error" or a silently different result.
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeUtf8, firstNonPrintable } from '../../src/pipeline/text-check.js';
import { runBkci } from '../helpers/io.js';

function scratch(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bkci-hostile-'));
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

const noInternal = (s: string) => expect(s).not.toMatch(/internal error|\n\s+at /);

describe('bytes that are not UTF-8 (the agent and minijinja-cli refuse them)', () => {
  const latin1 = Buffer.concat([Buffer.from('steps:\n  - label: "caf'), Buffer.from([0xe9]), Buffer.from('"\n    command: make\n')]);

  it('pipeline validate: exit 1 at the first such byte, nothing on stdout', async () => {
    const dir = scratch({ 'p.yml': latin1 });
    const r = await runBkci(['pipeline', 'validate', 'p.yml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^p\.yml:2:16: error: \(file\): the pipeline is not UTF-8 text: byte 0xE9 /m);
    noInternal(r.stderr);
    const j = await runBkci(['pipeline', 'validate', 'p.yml', '--json'], { cwd: dir });
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ valid: false, findings: [{ severity: 'error', line: 2, col: 16 }] });
  });

  it('pipeline upload: exit 1, nothing uploaded or written', async () => {
    const dir = scratch({ 'p.yml': latin1 });
    const r = await runBkci(['pipeline', 'upload', 'p.yml', '--dry-run', 'out'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/p\.yml:2:16: error: .*not UTF-8[\s\S]*nothing was uploaded/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('pipeline render: a template or DATA file that is not UTF-8 is exit 2 at file:line:col', async () => {
    const dir = scratch({
      'bad.j2': Buffer.concat([Buffer.from('steps:\n  - command: "{{ x }} '), Buffer.from([0xff, 0xfe]), Buffer.from('"\n')]),
      'ok.j2': 'steps:\n  - command: "{{ x }}"\n',
      'bad.yaml': Buffer.concat([Buffer.from('x: '), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]),
      'ok.yaml': 'x: y\n',
    });
    const t = await runBkci(['pipeline', 'render', 'bad.j2', 'ok.yaml'], { cwd: dir });
    expect(t.code).toBe(2);
    expect(t.stdout).toBe('');
    expect(t.stderr).toMatch(/bad\.j2:2:23: the template is not UTF-8 text: byte 0xFF/);
    const d = await runBkci(['pipeline', 'render', 'ok.j2', 'bad.yaml'], { cwd: dir });
    expect(d.code).toBe(2);
    expect(d.stdout).toBe('');
    expect(d.stderr).toMatch(/bad\.yaml:1:4: the data file is not UTF-8 text: byte 0xC3/);
    for (const r of [t, d]) noInternal(r.stderr);
  });

  it('locates the byte on later lines and after multi-byte characters; valid text decodes as Buffer#toString does', () => {
    const at = (b: Buffer) => {
      const d = decodeUtf8(b);
      return 'invalid' in d ? d.invalid : d.text;
    };
    expect(at(Buffer.from([0x61, 0x0a, 0xe2, 0x82, 0xac, 0x80]))).toEqual({ line: 2, col: 2, byte: 0x80 });
    // An overlong form, a surrogate and a truncated sequence at the end.
    expect(at(Buffer.from([0xc0, 0xaf]))).toEqual({ line: 1, col: 1, byte: 0xc0 });
    expect(at(Buffer.from([0x61, 0xed, 0xa0, 0x80]))).toEqual({ line: 1, col: 2, byte: 0xed });
    expect(at(Buffer.from([0x61, 0x62, 0xf0, 0x9f, 0x98]))).toEqual({ line: 1, col: 3, byte: 0xf0 });
    const good = Buffer.from('\ufeffsteps: ["😀 ü"]\n');
    expect(at(good)).toBe(good.toString('utf8'));
  });
});

describe('characters YAML readers refuse (go-yaml and serde_yaml: "control characters are not allowed")', () => {
  it('validate: NUL, BEL, ESC, DEL and C1 controls are exit 1 at their place, even in a comment', async () => {
    for (const [text, line, col] of [
      ['steps:\n  - command: a\u0000b\n', 2, 15],
      ['steps:\n  - command: "a\u0007"\n', 2, 16],
      ['# colour \u001b[31m\nsteps: [wait]\n', 1, 10],
      ['steps:\n  - command: x\u007f\n', 2, 15],
      ['steps:\n  - label: \u0090\n    command: x\n', 2, 12],
    ] as const) {
      const dir = scratch({ 'p.yml': text });
      const r = await runBkci(['pipeline', 'validate', 'p.yml'], { cwd: dir });
      expect(r.code, JSON.stringify(text)).toBe(1);
      expect(r.stderr, JSON.stringify(text)).toMatch(
        new RegExp(`^p\\.yml:${line}:${col}: error: \\(yaml\\): the control character U\\+00[0-9A-F]{2} is not allowed`, 'm'),
      );
    }
  });

  it('tab, CR LF, NEL, U+2028, a BOM and astral characters are printable', async () => {
    const dir = scratch({ 'p.yml': '\ufeffsteps:\r\n  - command: "a\tb \u0085 \u2028 \u{1f600}"\r\n' });
    const r = await runBkci(['pipeline', 'validate', 'p.yml'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(firstNonPrintable('\ud83d\ude00 ok')).toBeUndefined();
    expect(firstNonPrintable('x\ud800y')).toEqual({ line: 1, col: 2, code: 0xd800 });
  });

  it('render: a YAML DATA file with a control character is exit 2 at its place; a rendered one is exit 1 on the rendered text', async () => {
    const dir = scratch({
      'd.yaml': 'x: "a"\ny: b\u0001\n',
      'ok.yaml': 'x: y\n',
      't.j2': 'steps:\n  - command: "{{ x }}"\n',
      'ctl.j2': 'steps:\n  - command: "{{ "\\x1b" }}[1m"\n',
    });
    const d = await runBkci(['pipeline', 'render', 't.j2', 'd.yaml'], { cwd: dir });
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/d\.yaml:2:5: cannot parse: the control character U\+0001 is not allowed/);
    const c = await runBkci(['pipeline', 'render', 'ctl.j2', 'ok.yaml'], { cwd: dir });
    expect(c.code).toBe(1);
    expect(c.stdout).toBe('');
    expect(c.stderr).toMatch(/<rendered pipeline>:2:15: error: \(yaml\): the control character U\+001B/);
  });
});

describe('Jinja names are [A-Za-z_][A-Za-z0-9_]* (minijinja: "unexpected character")', () => {
  // An old vLLM template wrote `{% if $BUILDKITE_BRANCH == "main" %}`: minijinja refuses it; bkci
  // used to read `$BUILDKITE_BRANCH` as an undefined name and render the else branch.
  it.each([
    ['{% if $BRANCH == "main" %}a{% else %}b{% endif %}', 1, 7, '$'],
    ['x\n{{ a@b }}', 2, 5, '@'],
    ['{{ é }}', 1, 4, 'é'],
    ['{{ steps | $f }}', 1, 12, '$'],
    ['{{ x.$y }}', 1, 6, '$'],
    ['{% set v$ = 1 %}', 1, 9, '$'],
    ['{{ a;b }}', 1, 5, ';'],
  ])('%j is a syntax error at its place', async (src, line, col, ch) => {
    const dir = scratch({ 't.j2': src });
    const r = await runBkci(['pipeline', 'render', 't.j2', '--no-validate'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`t.j2:${line}:${col}: syntax error: unexpected character '${ch}'`);
  });

  it('names with digits and underscores, keywords and number literals still lex', async () => {
    const dir = scratch({ 't.j2': '{% set _a1 = 0x1F %}{{ _a1 }} {{ loop_2 | default(1_000) }} {{ none is none }}' });
    const r = await runBkci(['pipeline', 'render', 't.j2', '--no-validate'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('31 1000 true\n');
  });
});

describe('pipeline upload --dry-run DIR that cannot be made', () => {
  it('is exit 2 naming the directory, not a hang (Node’s recursive mkdir loops under /proc) or an internal error', async () => {
    const dir = scratch({ 'p.yml': 'steps:\n  - command: a\n', file: 'x' });
    for (const [target, why] of [
      ['/proc/bkci-no-such-dir/batches', /cannot create the directory: the system does not allow files there/],
      [join(dir, 'file', 'sub'), /cannot create the directory: it \(or a part of its path\) is a file/],
      ['/proc/self', /cannot write batch-001\.yml/],
    ] as const) {
      const r = await runBkci(['pipeline', 'upload', 'p.yml', '--dry-run', target], { cwd: dir });
      expect(r.code, target).toBe(2);
      expect(r.stderr, target).toMatch(why);
      expect(r.stderr, target).toContain(`--dry-run ${target}`);
      noInternal(r.stderr);
    }
    const ok = await runBkci(['pipeline', 'upload', 'p.yml', '--dry-run', 'a/b/c'], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    expect(readdirSync(join(dir, 'a/b/c'))).toEqual(['batch-001.yml']);
  });
});

describe('pipeline render -o under a directory that cannot be made', () => {
  it('is exit 2, not a hang: atomic writes make directories one level at a time (src/util/mkdirs.ts)', async () => {
    const dir = scratch({ 't.j2': 'steps:\n  - command: a\n' });
    const r = await runBkci(['pipeline', 'render', 't.j2', '--no-validate', '-o', '/proc/bkci-no-such-dir/out.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: -o \/proc\/bkci-no-such-dir\/out\.yaml: cannot write the output/m);
    expect(r.stdout).toBe('');
    noInternal(r.stderr);
    const ok = await runBkci(['pipeline', 'render', 't.j2', '--no-validate', '-o', 'a/b/out.yaml'], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    expect(readdirSync(join(dir, 'a/b'))).toEqual(['out.yaml']);
  });
});

describe('a value of the wrong type says what the field takes and what it got', () => {
  it('names the expected forms, the value’s kind, and the inner field when the form matched', async () => {
    const text = [
      'steps:',
      '  - command:',
      '  - command: 5',
      '  - label: a',
      '    command: [x, {b: 1}]',
      '  - label: b',
      '    command: x',
      '    depends_on: [{step: 5}]',
      '  - label: c',
      '    command: x',
      '    artifact_paths: {a: 1}',
      '',
    ].join('\n');
    const dir = scratch({ 'p.yml': text });
    const r = await runBkci(['pipeline', 'validate', 'p.yml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('p.yml:2:5: error: steps[0].command: expected a string or a list, got nothing (~)');
    expect(r.stderr).toContain('p.yml:3:5: error: steps[1].command: expected a string or a list, got a number');
    expect(r.stderr).toContain('p.yml:5:18: error: steps[2].command[1]: expected a string');
    expect(r.stderr).toContain('p.yml:8:19: error: steps[3].depends_on[0].step: expected a string');
    expect(r.stderr).toContain('p.yml:11:5: error: steps[4].artifact_paths: expected a string or a list, got a mapping');
    expect(r.stderr).not.toContain('wrong type or shape');
  });
});
