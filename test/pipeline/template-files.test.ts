// Templates that load other templates (extends/block, include, import, from ... import), rendered
// by the CLI from files and compared with Python's Jinja2 (FileSystemLoader) and minijinja-js.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { pythonWithJinja2 } from '../helpers/oracles.js';

const require = createRequire(import.meta.url);
const { Environment } = require('minijinja-js') as {
  Environment: new () => { addTemplate(n: string, s: string): void; renderTemplate(n: string, ctx: unknown): string };
};

interface Case {
  name: string;
  files: Record<string, string>;
  data: Record<string, unknown>;
}

const CASES: Case[] = [
  {
    name: 'extends with blocks and a parent default',
    files: {
      'main.j2': '{% extends "base.j2" %}{% block steps %}  - label: {{ label }}\n    command: run{% endblock %}',
      'base.j2': 'steps:\n{% block steps %}  - wait{% endblock %}\n{% block tail %}  - label: tail{% endblock %}\n',
    },
    data: { label: 'unit' },
  },
  {
    name: 'include sees the context, loops and ignore missing',
    files: {
      'main.j2': 'steps:\n{% for t in tests %}{% include "step.j2" %}\n{% endfor %}{% include "absent.j2" ignore missing %}done',
      'step.j2': '  - label: "{{ t.name }}"\n    agents: {queue: {{ queue }}}',
    },
    data: { queue: 'gpu', tests: [{ name: 'a' }, { name: 'b' }] },
  },
  {
    name: 'import macros as a namespace and from-import',
    files: {
      'main.j2': '{% import "macros.j2" as m %}{% from "macros.j2" import step as s %}steps:\n{{ m.step("x", 2) }}\n{{ s("y") }}\n{{ m.greeting }}',
      'macros.j2': '{% set greeting = "hi" %}{% macro step(name, gpus=1) %}  - label: {{ name }}\n    gpus: {{ gpus }}{% endmacro %}',
    },
    data: {},
  },
  {
    name: 'include of a template with a trailing newline and a loop in a child block',
    files: {
      'main.j2': '{% extends "layout.j2" %}{% block body %}{% for i in range(3) %}{% include "line.j2" %}{% endfor %}{% endblock %}',
      'layout.j2': 'head\n{% block body %}{% endblock %}\nfoot\n',
      'line.j2': 'line {{ i }}\n',
    },
    data: {},
  },
  {
    name: 'imports and includes "with context", and an include list taking the first that exists',
    files: {
      'main.j2':
        '{% from "m.j2" import hi, hi as hey with context %}{% import "m.j2" as m with context %}{{ hi(1) }} {{ hey(2) }} {{ m.hi(3) }} {% include ["missing.j2", "a.j2"] with context %}',
      'm.j2': '{% macro hi(n) %}hi {{ n }}{{ suffix }}{% endmacro %}',
      'a.j2': 'inc:{{ name }}',
    },
    data: { name: 'N', suffix: '!' },
  },
  {
    name: 'three levels of extends with super()',
    files: {
      'main.j2': '{% extends "mid.j2" %}{% block steps %}{{ super() }}\n  - label: child{% endblock %}',
      'mid.j2': '{% extends "base.j2" %}{% block steps %}{{ super() }}\n  - label: mid{% endblock %}{% block env %}X: 1{% endblock %}',
      'base.j2': 'steps:\n{% block steps %}  - label: base{% endblock %}\nenv: {% block env %}{% endblock %}\n',
    },
    data: {},
  },
];

function renderJinja2(dir: string, data: object): string {
  const script = `
import json, sys, jinja2
env = jinja2.Environment(loader=jinja2.FileSystemLoader(sys.argv[1]), autoescape=False, keep_trailing_newline=False)
sys.stdout.write(env.get_template("main.j2").render(**json.loads(sys.argv[2])))
`;
  return execFileSync(pythonWithJinja2(), ['-c', script, dir, JSON.stringify(data)]).toString();
}

function renderMinijinja(c: Case): string {
  const env = new Environment();
  for (const [n, src] of Object.entries(c.files)) env.addTemplate(n, src);
  return env.renderTemplate('main.j2', c.data);
}

describe('templates loading templates', () => {
  it.each(CASES.map((c) => [c.name, c]))('%s: bkci == minijinja == Jinja2', async (_n, c) => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-tpl-'));
    for (const [n, src] of Object.entries(c.files)) writeFileSync(join(dir, n), src);
    writeFileSync(join(dir, 'data.json'), JSON.stringify(c.data));
    const r = await runBkci(['pipeline', 'render', join(dir, 'main.j2'), join(dir, 'data.json'), '--no-validate', '--no-newline']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(renderMinijinja(c));
    expect(r.stdout).toBe(renderJinja2(dir, c.data));
  });

  // minijinja-cli joins a relative name to the directory of the template that names it (its path
  // join callback); Jinja2's FileSystemLoader and minijinja-js (no loader) do not, so this is
  // checked against that rule directly.
  it('names in a template of a subdirectory are relative to that directory, as minijinja-cli joins them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-tpl-'));
    const files: Record<string, string> = {
      'main.j2': 'main:{% include "sub/a.j2" %}|{% extends "layouts/base.j2" %}',
      'sub/a.j2': 'A:{% include "b.j2" %}:{% include "../b.j2" %}:{% from "lib/m.j2" import hi %}{{ hi() }}',
      'sub/b.j2': 'subB',
      'b.j2': 'topB',
      'sub/lib/m.j2': '{% macro hi() %}{% include "word.j2" %}{% endmacro %}',
      'sub/lib/word.j2': 'hello',
      'layouts/base.j2': '[{% include "part.j2" %}]',
      'layouts/part.j2': 'layout part',
    };
    const { mkdirSync } = await import('node:fs');
    for (const [n, src] of Object.entries(files)) {
      mkdirSync(join(dir, n, '..'), { recursive: true });
      writeFileSync(join(dir, n), src);
    }
    writeFileSync(join(dir, 'main2.j2'), '{% include "sub/a.j2" %}');
    const r = await runBkci(['pipeline', 'render', join(dir, 'main2.j2'), '--no-validate', '--no-newline']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('A:subB:topB:hello');
    const ext = await runBkci(['pipeline', 'render', join(dir, 'main.j2'), '--no-validate', '--no-newline']);
    expect(ext.code, ext.stderr).toBe(0);
    expect(ext.stdout).toBe('[layout part]');
    // An error in an included template names it by its path beside the main template's.
    writeFileSync(join(dir, 'sub/b.j2'), '{{ x.y }}');
    const bad = await runBkci(['pipeline', 'render', join(dir, 'main2.j2'), '--no-validate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${join(dir, 'sub/b.j2')}:1:`);
  });

  it('a missing included template is exit 2 naming it and the place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-tpl-'));
    writeFileSync(join(dir, 'main.j2'), 'a\n{% include "nope.j2" %}\n');
    const r = await runBkci(['pipeline', 'render', join(dir, 'main.j2'), '--no-validate']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/main\.j2:2:\d+.*nope\.j2/);
  });
});
