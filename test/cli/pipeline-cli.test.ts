// The pipeline commands through the real CLI entry: exit codes, messages naming the place, stdout
// carrying only the product.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';

const ROOT = join(import.meta.dirname, '../..');
const TEMPLATE = join(ROOT, 'templates/default.j2');
const EXAMPLE = join(ROOT, 'examples/test-pipeline.yaml');

function tmp(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bkci-cli-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('bkci pipeline render', () => {
  it('renders the bundled example into a valid pipeline', async () => {
    const r = await runBkci(['pipeline', 'render', TEMPLATE, EXAMPLE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^steps:\n {2}- label: "Build wheel"/);
    const v = await runBkci(['pipeline', 'validate', '-'], { stdin: r.stdout });
    expect(v.code).toBe(0);
  });

  it('behaves like minijinja-cli for -D forms and the trailing newline', async () => {
    const d = tmp({ 't.j2': '{{ a }}|{{ b + 1 }}|{{ c }}|{{ u }}|{{ n is number }}\n', 'd.yaml': 'a: from-data\nn: 1.0\n' });
    const r = await runBkci(['pipeline', 'render', 't.j2', 'd.yaml', '-D', 'a=x=y', '-D', 'b:=41', '-D', 'c', '--no-validate'], { cwd: d });
    expect(r).toMatchObject({ code: 0, stdout: 'x=y|42|true||true\n' });
  });

  it('keeps float-ness from YAML data', async () => {
    const d = tmp({ 't.j2': '{{ v }} {{ i }}', 'd.yaml': 'v: 1.0\ni: 1\n' });
    const r = await runBkci(['pipeline', 'render', 't.j2', 'd.yaml', '--no-validate'], { cwd: d });
    expect(r.stdout).toBe('1.0 1\n');
  });

  it('exits 2 naming template:line:col on a syntax error, printing nothing', async () => {
    const d = tmp({ 't.j2': 'steps:\n  {% if x %}\n' });
    const r = await runBkci(['pipeline', 'render', 't.j2'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^bkci: t\.j2:\d+:\d+: syntax error/);
    expect(r.stderr).not.toMatch(/at .*\.js/);
  });

  it('shows the stack only with --debug', async () => {
    const d = tmp({ 't.j2': '{{ 1 + }}' });
    const r = await runBkci(['--debug', 'pipeline', 'render', 't.j2'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\n\s+at renderPipeline/);
  });

  it('exits 2 on a missing data file and on unreadable YAML with file:line:col', async () => {
    const d = tmp({ 't.j2': 'x', 'bad.yaml': 'a: [1,\n' });
    const missing = await runBkci(['pipeline', 'render', 't.j2', 'nope.yaml'], { cwd: d });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yaml: cannot read the data file: no such file/);
    const bad = await runBkci(['pipeline', 'render', 't.j2', 'bad.yaml'], { cwd: d });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad\.yaml:\d+:\d+: cannot parse/);
  });

  it('an attribute of an undefined value is exit 2 naming what was undefined', async () => {
    const d = tmp({ 't.j2': 'steps:\n{{ step.env.X }}\n', 'u.j2': '{{ d["k"].v }}', 'm.j2': '{{ s.upper() }}' });
    let r = await runBkci(['pipeline', 'render', 't.j2', '--no-validate'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/t\.j2:2:\d+: undefined value: 'step' is undefined, so its attribute 'env' cannot be read/);
    r = await runBkci(['pipeline', 'render', 'u.j2', '--no-validate'], { cwd: d });
    expect(r.stderr).toMatch(/'d' is undefined, so it cannot be indexed/);
    r = await runBkci(['pipeline', 'render', 'm.j2', '--no-validate'], { cwd: d });
    expect(r.stderr).toMatch(/'s' is undefined, so it has no method 'upper'/);
  });

  it('with --strict-undefined, an undefined variable is an error at its position', async () => {
    const d = tmp({ 't.j2': 'steps:\n  - command: {{ cmd }}\n' });
    const r = await runBkci(['pipeline', 'render', 't.j2', '--strict-undefined'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/t\.j2:2:\d+: undefined value: 'cmd' is undefined/);
    const ok = await runBkci(['pipeline', 'render', 't.j2', '--strict-undefined', '-D', 'cmd=make'], { cwd: d });
    expect(ok.code).toBe(0);
  });

  it("takes minijinja-cli's own flags: --strict, -n, --env (ENV, overridden by data and -D), --py-compat, --trim-blocks, --lstrip-blocks", async () => {
    const d = tmp({ 't.j2': '{{ ENV.HOME }}|{{ ENV.TOKEN_X | default("-") }}|{{ "a=b".split("=") | last }}', 'd.yaml': 'other: 1\n' });
    const r = await runBkci(['pipeline', 'render', 't.j2', 'd.yaml', '--env', '--py-compat', '-n', '--no-validate'], {
      cwd: d,
      env: { HOME: '/home/ci', TOKEN_X: 'x' },
    });
    expect(r).toMatchObject({ code: 0, stdout: '/home/ci|x|b' });
    const without = await runBkci(['pipeline', 'render', 't.j2', '--no-validate'], { cwd: d, env: { HOME: '/home/ci' } });
    expect(without).toMatchObject({ code: 2, stdout: '' }); // an attribute of undefined, as in minijinja
    expect(without.stderr).toMatch(/'ENV' is undefined/);
    const overridden = await runBkci(['pipeline', 'render', 't.j2', '--env', '-D', 'ENV:={"HOME": "/d"}', '--no-validate'], {
      cwd: d,
      env: { HOME: '/home/ci' },
    });
    expect(overridden.stdout).toBe('/d|-|b\n');
    const blocks = tmp({ 'b.j2': 'steps:\n  {% for c in ["a", "b"] %}\n  - command: {{ c }}\n  {% endfor %}\n' });
    const trimmed = await runBkci(['pipeline', 'render', 'b.j2', '--trim-blocks', '--lstrip-blocks'], { cwd: blocks });
    expect(trimmed).toMatchObject({ code: 0, stdout: 'steps:\n  - command: a\n  - command: b\n\n' }); // the body's last newline, then minijinja-cli's
    const strict = await runBkci(['pipeline', 'render', 't.j2', '--strict', '--no-validate'], { cwd: d });
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/t\.j2:1:\d+: undefined value: 'ENV' is undefined/);
  });

  it("-a/--autoescape as minijinja-cli: auto picks each template's mode by its name; a mode given holds for every template, included ones too", async () => {
    const d = tmp({
      'p.yaml.j2': 'x: {{ s }} {{ m }}|{% include "i.yaml.j2" %}',
      'p.html.j2': 'x: {{ s }} {{ m }}|{% include "i.html.j2" %}',
      'p.j2': 'x: {{ s }} {{ m }}|{% include "i.j2" %}',
      'i.yaml.j2': '{{ s }}',
      'i.html.j2': '{{ s }}',
      'i.j2': '{{ s }}',
      'd.yaml': 's: "<a \\"b\\">"\nm: {k: v}\n',
    });
    const render = async (file: string, mode?: string) => {
      const r = await runBkci(['pipeline', 'render', file, 'd.yaml', '--no-validate', '-n', ...(mode ? ['-a', mode] : [])], { cwd: d });
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const auto = { yaml: await render('p.yaml.j2'), html: await render('p.html.j2'), none: await render('p.j2') };
    expect(auto.yaml).toBe('x: "<a \\"b\\">" {"k":"v"}|"<a \\"b\\">"');
    expect(auto.html).toBe('x: &lt;a &quot;b&quot;&gt; {&quot;k&quot;: &quot;v&quot;}|&lt;a &quot;b&quot;&gt;');
    expect(auto.none).toBe('x: <a "b"> {"k": "v"}|<a "b">');
    expect(await render('p.yaml.j2', 'auto')).toBe(auto.yaml);
    expect(await render('p.yaml.j2', 'none')).toBe(auto.none);
    expect(await render('p.j2', 'html')).toBe(auto.html);
    expect(await render('p.html.j2', 'json')).toBe(auto.yaml);
    const bad = await runBkci(['pipeline', 'render', 'p.j2', '-a', 'xml'], { cwd: d });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Allowed choices are auto, none, html, json/);
  });

  it('--select uses a part of DATA as the context, as minijinja-cli does; a path that leads nowhere or to a non-mapping is exit 2', async () => {
    const d = tmp({ 't.j2': '{{ x }}|{{ y }}|{{ ci is defined }}', 'd.yaml': 'ci:\n  linux: {x: 1}\n  list:\n    - {y: 2}\n' });
    const run = (sel: string) => runBkci(['pipeline', 'render', 't.j2', 'd.yaml', '--select', sel, '--no-validate', '-n'], { cwd: d });
    expect(await run('ci.linux')).toMatchObject({ code: 0, stdout: '1||false' });
    expect(await run('ci.list.0')).toMatchObject({ code: 0, stdout: '|2|false' });
    for (const [sel, msg] of [
      ['ci.nope', /--select ci\.nope: d\.yaml has nothing at 'nope'/],
      ['ci.list', /d\.yaml: the data must be a mapping at --select ci\.list, got a list/],
      ['ci.list.5', /nothing at '5'/],
    ] as const) {
      const r = await run(sel);
      expect(r, sel).toMatchObject({ code: 2, stdout: '' });
      expect(r.stderr).toMatch(msg);
    }
    const noData = await runBkci(['pipeline', 'render', 't.j2', '--select', 'ci'], { cwd: d });
    expect(noData.code).toBe(2);
    expect(noData.stderr).toMatch(/--select needs a DATA file/);
  });

  it('--no-include and --safe-path as minijinja-cli: no other template, or only those under the safe directories (the main one too)', async () => {
    const d = tmp({
      'main.j2': 'main:{% include "sub/a.j2" %}',
      'sub/a.j2': 'A:{% include "b.j2" %}',
      'sub/b.j2': 'B',
      'sub/up.j2': '{% include "../main.j2" %}',
    });
    const run = (args: string[]) => runBkci(['pipeline', 'render', ...args, '--no-validate', '-n'], { cwd: d });
    expect(await run(['main.j2'])).toMatchObject({ code: 0, stdout: 'main:A:B' });
    const none = await run(['main.j2', '--no-include']);
    expect(none).toMatchObject({ code: 2, stdout: '' });
    expect(none.stderr).toMatch(/main\.j2:1:\d+: template not found: sub\/a\.j2/);
    expect(await run(['main.j2', '--safe-path', '.'])).toMatchObject({ code: 0, stdout: 'main:A:B' });
    expect(await run(['sub/a.j2', '--safe-path', 'sub'])).toMatchObject({ code: 0, stdout: 'A:B' });
    const outside = await run(['sub/up.j2', '--safe-path', 'sub']);
    expect(outside).toMatchObject({ code: 2, stdout: '' });
    expect(outside.stderr).toMatch(/sub\/up\.j2:1:\d+: invalid operation: cannot include template \.\.\/main\.j2 from a path outside --safe-path/);
    const mainOutside = await run(['main.j2', '--safe-path', 'sub', '--safe-path', 'other']);
    expect(mainOutside).toMatchObject({ code: 2, stdout: '' });
    expect(mainOutside.stderr).toMatch(/main\.j2: the template is outside --safe-path \(sub, other\)/);
  });

  it('a template that includes, imports or calls itself without end is exit 2 at its position', async () => {
    const d = tmp({ 'inc.j2': 'x{% include "inc.j2" %}', 'imp.j2': '{% import "imp.j2" as m %}', 'mac.j2': '{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}' });
    for (const [file, where] of [
      ['inc.j2', 'inc.j2:1:2'],
      ['imp.j2', 'imp.j2:1:1'],
      ['mac.j2', 'mac.j2:1:20'],
    ]) {
      const r = await runBkci(['pipeline', 'render', file!, '--no-validate'], { cwd: d });
      expect(r, file).toMatchObject({ code: 2, stdout: '' });
      expect(r.stderr).toContain(`${where}: recursion limit exceeded`);
    }
  });

  it('exits 1 with nothing on stdout when the rendered pipeline is invalid', async () => {
    const d = tmp({ 't.j2': 'steps:\n  - wait: ~\n    env: {A: b}\n' });
    const r = await runBkci(['pipeline', 'render', 't.j2'], { cwd: d });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('<rendered pipeline>:3:5: error: steps[0].env: `env` is not a valid property on the `wait` step');
    const anyway = await runBkci(['pipeline', 'render', 't.j2', '--no-validate'], { cwd: d });
    expect(anyway.code).toBe(0);
  });

  it('without a template or test list in .buildkite/, says what to pass (exit 2)', async () => {
    const r = await runBkci(['pipeline', 'render'], { cwd: tmp({}) });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/no test list[\s\S]*\.buildkite\/test-pipeline\.yaml/);
  });

  it('writes -o atomically and --format json prints the parsed pipeline', async () => {
    const d = tmp({});
    const r = await runBkci(['pipeline', 'render', TEMPLATE, EXAMPLE, '-o', 'out.yml'], { cwd: d });
    expect(r).toMatchObject({ code: 0, stdout: '' });
    expect(readFileSync(join(d, 'out.yml'), 'utf8')).toMatch(/^steps:/);
    const mtime = statSync(join(d, 'out.yml')).mtimeMs;
    const again = await runBkci(['pipeline', 'render', TEMPLATE, EXAMPLE, '-o', 'out.yml'], { cwd: d });
    expect(again.stderr).toMatch(/unchanged: nothing written/);
    expect(statSync(join(d, 'out.yml')).mtimeMs).toBe(mtime);
    const j = await runBkci(['pipeline', 'render', TEMPLATE, EXAMPLE, '--format', 'json']);
    expect((JSON.parse(j.stdout) as { steps: unknown[] }).steps.length).toBeGreaterThan(3);
  });

  it('selects steps from changed files, keeps dependencies and explains on stderr', async () => {
    const r = await runBkci(['pipeline', 'render', TEMPLATE, EXAMPLE, '--changed-files', '-', '--explain'], { stdin: 'src/distributed/comm.py\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('key: "distributed"');
    expect(r.stdout).toContain('key: "build"');
    expect(r.stdout).not.toContain('key: "kernels"');
    expect(r.stdout).toContain('block: "Run Long benchmarks"');
    expect(r.stderr).toContain('run   distributed: src/distributed/comm.py matches src/distributed/');
    expect(r.stderr).toContain('skip  kernels: no changed file matches csrc/, src/kernels/, tests/kernels/');
  });

  it('--only-steps runs the named step and what it depends on; --json explains as JSON', async () => {
    const r = await runBkci(['pipeline', 'render', TEMPLATE, EXAMPLE, '--only-steps', 'kernels', '--explain', '--json']);
    expect(r.code).toBe(0);
    const ex = JSON.parse(r.stderr) as { steps: { id: string; run: boolean; reasons: string[] }[] };
    expect(ex.steps.filter((s) => s.run).map((s) => s.id)).toEqual(['build', 'kernels']);
    expect(ex.steps.find((s) => s.id === 'build')!.reasons).toContain('dependency of kernels');
  });

  it('--run-all-paths sets run_all when a changed file matches a glob', async () => {
    const d = tmp({ 't.j2': '{{ run_all }} {{ list_file_diff }}' });
    const r = await runBkci(['pipeline', 'render', 't.j2', '--changed-files', '-', '--run-all-paths', 'setup.py,csrc/**', '--no-validate'], {
      cwd: d,
      stdin: 'docs/a.md\ncsrc/x/y.cu\n',
    });
    expect(r.stdout).toBe('1 docs/a.md|csrc/x/y.cu\n');
  });

  it('exposes BUILDKITE_* variables as env and buildkite', async () => {
    const d = tmp({ 't.j2': '{{ env.BUILDKITE_BRANCH }} {{ buildkite.pull_request }} {{ buildkite.build_number }}' });
    const r = await runBkci(['pipeline', 'render', 't.j2', '--no-validate'], {
      cwd: d,
      env: { BUILDKITE_BRANCH: 'main', BUILDKITE_PULL_REQUEST: 'false', BUILDKITE_BUILD_NUMBER: '7' },
    });
    expect(r.stdout).toBe('main none 7\n');
  });

  it('exits 2 on bad usage', async () => {
    const r = await runBkci(['pipeline', 'render', '--format', 'xml']);
    expect(r.code).toBe(2);
    const u = await runBkci(['pipeline', 'frobnicate']);
    expect(u.code).toBe(2);
  });
});

describe('bkci pipeline validate', () => {
  it('exits 1 on an invalid file with file:line:col and the field path', async () => {
    const d = tmp({ 'p.yml': 'steps:\n  - command: a\n    timeout_in_minutes: 0\n' });
    const r = await runBkci(['pipeline', 'validate', 'p.yml'], { cwd: d });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/p\.yml:3:5: error: steps\[0\]\.timeout_in_minutes:/);
  });

  it('shows the first 20 findings of a cascade, and --json all of them', async () => {
    const steps = Array.from({ length: 30 }, (_v, i) => `  - command: a\n    timeout_in_minutes: 0\n    key: k${i}\n`).join('');
    const d = tmp({ 'p.yml': `steps:\n${steps}` });
    const r = await runBkci(['pipeline', 'validate', 'p.yml'], { cwd: d });
    expect(r.code).toBe(1);
    expect(r.stderr.match(/: error: /g)).toHaveLength(20);
    // The rest are located: where the next one is and the lines of all ten.
    expect(r.stderr).toContain('p.yml:63:5: ... and 10 more findings at lines 63, 66, 69, 72, 75, 78, 81, 84, 87, 90 (fix the first ones first');
    const j = await runBkci(['pipeline', 'validate', 'p.yml', '--json'], { cwd: d });
    expect(JSON.parse(j.stdout).findings).toHaveLength(30);
  });

  it('prints JSON with --json', async () => {
    const d = tmp({ 'p.yml': 'steps:\n  - command: a\n' });
    const r = await runBkci(['pipeline', 'validate', 'p.yml', '--json'], { cwd: d });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true, jobs: 1, findings: [] });
  });

  it('an empty pipeline file is invalid, as the agent refuses it; empty stdin uploads nothing', async () => {
    const d = tmp({ 'empty.yml': '' });
    const file = await runBkci(['pipeline', 'validate', 'empty.yml'], { cwd: d });
    expect(file.code).toBe(1);
    expect(file.stderr).toMatch(/empty\.yml:1:1: error: \(file\): the pipeline file is empty/);
    const stdin = await runBkci(['pipeline', 'validate', '-'], { stdin: '' });
    expect(stdin).toMatchObject({ code: 0, stdout: '<stdin>: valid (0 jobs)\n' });
  });

  it('exits 2 when the file is missing', async () => {
    const r = await runBkci(['pipeline', 'validate', '/nonexistent/p.yml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\/nonexistent\/p\.yml: cannot read the pipeline: no such file/);
    expect(existsSync('/nonexistent')).toBe(false);
    const dir = await runBkci(['pipeline', 'validate', tmp({})]);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toMatch(/cannot read the pipeline: it is a directory/);
  });
});
