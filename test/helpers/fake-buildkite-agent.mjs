#!/usr/bin/env node
// A stand-in for `buildkite-agent pipeline upload` in tests: reads the pipeline on stdin, applies
// the server's upload rules, and records each accepted upload in a JSON state file.
//   FAKE_AGENT_STATE  the state file: {"keys": [...], "uploads": [{args, pipeline, jobs}], "build": [...]}
//   FAKE_AGENT_LIMIT  jobs per upload (default 500)
//   FAKE_AGENT_FAIL_AT  the upload number (1-based) that fails as the API would
// Rules, as the server applies them: at most LIMIT jobs (parallelism copies, matrix combinations,
// +1 per group, every other step 1), counted here on its own, not with bkci's code; a depends_on
// key must exist in this upload or an earlier one of the build (or in the state's initial keys);
// a key may be used once per build. `build` is the build's step order: each upload is inserted
// right after the uploading job, so a later upload lands before an earlier one.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const [, , group, verb, ...args] = process.argv;
if (group !== 'pipeline' || verb !== 'upload') {
  process.stderr.write(`fake-buildkite-agent: expected "pipeline upload", got ${process.argv.slice(2).join(' ')}\n`);
  process.exit(2);
}
const statePath = process.env.FAKE_AGENT_STATE;
const limit = Number(process.env.FAKE_AGENT_LIMIT ?? 500);
const state = statePath && existsSync(statePath) ? JSON.parse(readFileSync(statePath, 'utf8')) : { keys: [], uploads: [], build: [] };
state.uploads ??= [];
state.build ??= [];
state.keys ??= [];
const fatal = (msg) => {
  process.stderr.write(
    `2026-12-07 12:00:00 INFO   Reading pipeline config from STDIN\n2026-12-07 12:00:01 FATAL  buildkite-agent: fatal: Failed to upload and process pipeline: ${msg}\n`,
  );
  process.exit(1);
};
const input = readFileSync(0, 'utf8');
const number = state.uploads.length + 1;
if (Number(process.env.FAKE_AGENT_FAIL_AT) === number) fatal('POST https://agent.buildkite.com/v3/jobs/x/pipelines: 503 Service Unavailable');

const isMap = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const body = (s) =>
  isMap(s) && Object.keys(s).length === 1 && ['wait', 'block', 'input', 'command', 'trigger'].includes(Object.keys(s)[0]) && isMap(Object.values(s)[0])
    ? Object.values(s)[0]
    : s;
const combos = (m) => {
  if (Array.isArray(m)) return m.length;
  if (!isMap(m)) return 1;
  const dims = Array.isArray(m.setup) ? [m.setup] : Object.values(m.setup ?? {});
  let n = dims.reduce((a, d) => a * (Array.isArray(d) ? d.length : 1), 1);
  const names = Array.isArray(m.setup) ? null : Object.keys(m.setup ?? {});
  for (const a of m.adjustments ?? []) {
    const inSetup = names
      ? isMap(a.with) && Object.keys(a.with).length === names.length && names.every((k) => (m.setup[k] ?? []).map(String).includes(String(a.with[k])))
      : m.setup.map(String).includes(String(a.with));
    if (inSetup && a.skip) n--;
    if (!inSetup && !a.skip) n++;
  }
  return n;
};
const jobsOf = (s) => {
  const b = body(s);
  if (!isMap(b)) return 1;
  if ('group' in b) return 1 + (b.steps ?? []).reduce((n, x) => n + jobsOf(x), 0);
  if ('command' in b || 'commands' in b) return (b.parallelism > 1 ? b.parallelism : 1) * (b.matrix ? combos(b.matrix) : 1);
  return 1;
};
const keyOf = (b) => (isMap(b) ? (b.key ?? b.identifier ?? b.id) : undefined);
const depsOf = (b) => {
  const d = isMap(b) ? b.depends_on : undefined;
  const list = Array.isArray(d) ? d : d == null ? [] : [d];
  return list.map((x) => (isMap(x) ? x.step : x)).filter((x) => typeof x === 'string');
};

const docs = parseAllDocuments(input).map((d) => d.toJS());
for (const doc of docs) {
  const steps = Array.isArray(doc) ? doc : (doc?.steps ?? []);
  const jobs = steps.reduce((n, s) => n + jobsOf(s), 0);
  if (jobs > limit)
    fatal(
      `Pipeline upload rejected: The number of jobs in this upload exceeds your organization limit of ${limit}. Please break the upload into batches below this limit, or contact support to discuss an increase`,
    );
  const all = steps.flatMap((s) => [body(s), ...(isMap(body(s)) && 'group' in body(s) ? (body(s).steps ?? []).map(body) : [])]);
  const known = new Set(state.keys);
  const here = new Set();
  for (const b of all) {
    const k = keyOf(b);
    if (k === undefined) continue;
    if (known.has(k) || here.has(k)) fatal(`Pipeline upload rejected: The key "${k}" has already been used by another step in this build`);
    here.add(k);
  }
  const missing = all.flatMap(depsOf).filter((k) => !known.has(k) && !here.has(k));
  if (missing.length) fatal(`Pipeline upload rejected: Step dependencies not found: ${[...new Set(missing)].join(', ')}`);
  state.keys.push(...here);
  state.uploads.push({ args, pipeline: doc, jobs });
  // Inserted right after the uploading job: before every earlier upload.
  state.build = [...steps, ...state.build];
}
if (statePath) writeFileSync(statePath, JSON.stringify(state, null, 1));
process.stderr.write(`2026-12-07 12:00:02 INFO   Successfully parsed and uploaded pipeline #1 from "(stdin)"\n`);
