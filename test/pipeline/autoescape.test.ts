// Autoescaping as minijinja does it, byte-compared with minijinja-js: templates named *.yaml.j2,
// *.yml, *.json.j2 print every value as JSON, *.html.j2 escape HTML, others nothing. `tojson`,
// `escape` and `safe` give safe strings (printed as they are, never escaped twice); a safe string is
// an ordinary string to every other filter, test and operator; `{% autoescape %}` switches the mode
// for its body; an included template prints in its own name's mode.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Environment } from 'minijinja-js';
import { compileTemplate } from '../../src/pipeline/jinja/index.js';
import { parseYamlValue } from '../../src/pipeline/data.js';

const DATA = { nums: [3, 1, 2], m: { b: 2, a: 1 }, s: 'a"b\'c<d>&', f: 1.5, none: null, t: true, cmd: 'echo "hi"\nexit 1', lst: ['x', 'y'] };
const SNIPPETS = [
  'command: {{ cmd }}',
  'command: {{ cmd | tojson }}',
  'command: {{ cmd | safe }}',
  'x: {{ s }} {{ nums }} {{ m }} {{ f }} {{ none }} {{ t }} {{ missing }}',
  'x: {{ s | e }} {{ s | escape }}',
  '{% for x in lst %}- {{ x }}\n{% endfor %}',
  'x: {{ s ~ "!" }}',
  '{% macro q(v) %}"{{ v }}"{% endmacro %}{{ q(s) }}',
  '{{ m | tojson(true) }}|{{ m | tojson(false) }}|{{ m | tojson(indent=true) }}|{{ m | tojson(2) }}',
  '{{ [s, s] | join(", ") }}',
  '{{ s | safe | upper }}',
  '{{ (s | safe) ~ s }}',
  '{{ s | replace("a", "<") }}',
  '{% macro q(v) %}<{{ v }}>{% endmacro %}{{ q(s) }}|{{ q(s) | upper }}',
  '{% set x %}<{{ s }}>{% endset %}{{ x }}',
  '{{ s | e | e }}',
  '{{ s | length }} {{ s | safe | length }}',
  '{{ "<b>" | safe }}{{ "<b>" }}',
  '{% filter upper %}{{ s }}<{% endfilter %}',
  '{% autoescape false %}{{ s }}{% endautoescape %}',
  '{% autoescape true %}{{ s }}{% endautoescape %}',
  '{% autoescape "json" %}{{ s }}{% endautoescape %}{{ s }}',
  '{% autoescape "html" %}{{ s }}{% autoescape "none" %}{{ s }}{% endautoescape %}{{ s }}{% endautoescape %}',
  '{% autoescape "bad" %}{% endautoescape %}',
  '{{ s is safe }} {{ s | safe is safe }}',
  '{% for c in "ab" | safe %}{{ c }}{% endfor %}',
  '{% set j = m | tojson %}{{ j }} {{ j | length }} {{ j == \'{"a":1,"b":2}\' }} {{ j | e }}',
  '{{ s | safe | e }} {{ s | e | safe }} {{ (s | e) ~ "<" }}',
  '{{ "a" in ["a" | safe] }} {{ [{"k": "a"}] | selectattr("k", "eq", "a" | safe) | list | length }} {{ ("" | safe) or "x" }}',
  '{% macro q() %}<{{ s }}>{% endmacro %}{{ q() | length }} {{ q() == "x" }}',
  '{{ (s | safe) == s }} {{ "a" in (s | safe) }} {{ (s | safe)[0] }}',
];
const NAMES = ['t.j2', 'p.yaml.j2', 'p.yml', 'p.json.j2', 'p.html.j2'];

function minijinja(name: string, src: string, extra: Record<string, string> = {}): string {
  const env = new Environment();
  for (const [n, t] of Object.entries(extra)) env.addTemplate(n, t);
  env.addTemplate(name, src);
  try {
    return env.renderTemplate(name, DATA);
  } catch {
    return 'ERROR';
  }
}

function bkci(name: string, src: string, dir = tmpdir()): string {
  try {
    return compileTemplate(src, join(dir, name)).render(parseYamlValue(JSON.stringify(DATA), 'd.json') as Map<string, unknown>);
  } catch {
    return 'ERROR';
  }
}

describe('autoescaping', () => {
  it.each(NAMES)('renders every snippet in %s as minijinja does', (name) => {
    for (const src of SNIPPETS) expect(bkci(name, src), `${name}: ${src}`).toBe(minijinja(name, src));
    // Not a vacuous comparison: the modes print differently.
    expect(bkci(name, 'x: {{ s }}')).toBe(name === 't.j2' ? 'x: a"b\'c<d>&' : name.includes('html') ? 'x: a&quot;b&#x27;c&lt;d&gt;&amp;' : 'x: "a\\"b\'c<d>&"');
  });

  it('prints an included template in its own mode', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-esc-'));
    const files = { 'inc.yaml.j2': '{{ s }}|{{ s | tojson }}', 'inc.j2': '{{ s }}' };
    for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
    for (const [main, src] of [
      ['m.j2', '[{% include "inc.yaml.j2" %}][{{ s }}]'],
      ['m.yaml.j2', '[{% include "inc.j2" %}][{{ s }}]'],
      ['m.j2', '{% autoescape "json" %}{{ s }}{% include "inc.j2" %}{% endautoescape %}{{ s }}'],
    ] as const) {
      const want = minijinja(main, src, files);
      expect(want).not.toBe('ERROR');
      expect(bkci(main, src, dir), src).toBe(want);
    }
  });
});
