// The test oracles: Python's Jinja2 (Debian's python3-jinja2) and PyYAML, run as one batch per call.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

let python: string | undefined;

// A python3 that can import jinja2 and yaml; a missing oracle fails the test, it is never skipped.
export function pythonWithJinja2(): string {
  if (python) return python;
  for (const cand of [process.env.BKCI_TEST_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[]) {
    if (cand.startsWith('/') && !existsSync(cand)) continue;
    try {
      execFileSync(cand, ['-c', 'import jinja2, yaml'], { stdio: 'ignore' });
      python = cand;
      return cand;
    } catch {
      /* try the next */
    }
  }
  throw new Error('no python3 with jinja2 and yaml: apt-get install -y python3-jinja2 python3-yaml (.ci/run does this)');
}

const JINJA2_SCRIPT = `
import json, sys, jinja2
cases = json.load(sys.stdin)
env = jinja2.Environment(autoescape=False, keep_trailing_newline=False, undefined=jinja2.Undefined)
out = []
for c in cases:
    try:
        out.append({"out": env.from_string(c["template"]).render(**c["data"])})
    except Exception as e:
        out.append({"error": type(e).__name__ + ": " + str(e)})
json.dump(out, sys.stdout)
`;

export function renderWithJinja2(cases: { template: string; data: Record<string, unknown> }[]): { out?: string; error?: string }[] {
  const py = pythonWithJinja2();
  const res = execFileSync(py, ['-c', JINJA2_SCRIPT], { input: JSON.stringify(cases), maxBuffer: 64 << 20 });
  return JSON.parse(res.toString()) as { out?: string; error?: string }[];
}

const PYYAML_SCRIPT = `
import json, sys, yaml
docs = [list(yaml.safe_load_all(open(p))) for p in sys.argv[1:]]
json.dump(docs, sys.stdout)
`;

export function parseWithPyYaml(paths: string[]): unknown[][] {
  const res = execFileSync(pythonWithJinja2(), ['-c', PYYAML_SCRIPT, ...paths], { maxBuffer: 256 << 20 });
  return JSON.parse(res.toString()) as unknown[][];
}
