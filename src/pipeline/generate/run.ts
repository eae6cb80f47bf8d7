// The edge of `bkci pipeline generate`: load the profile, config and test areas, gather the facts
// (environment, changed files from git, registry probes), run the pure core, write the result.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { fastParseYaml } from '../../util/fast-yaml.js';
import { InputError, UsageError, CheckFailed } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { checkSteps, dependenciesMatch, Generator, type Decision, type Facts } from './build.js';
import { MAX_ALIAS_COUNT, readConfig, readTestAreas, yamlGuard, type GenConfig } from './areas.js';
import { checkProfile, fill, matches, type Profile, type VariableDef } from './profile.js';

export interface GenerateRequest {
  config: string;
  profile: string;
  changedFiles?: string; // a file (or -) with one path per line
  diffBase?: string;
  labels?: string[];
  otelBundle?: string;
  probe: boolean;
  fileOrder?: 'directory' | 'sorted';
  output?: string;
  unselected?: 'block' | 'group-block' | 'skip';
  // Count the jobs under each --unselected choice (for --explain).
  countChoices?: boolean;
}

export interface GenerateResult {
  jobsPerChoice?: Record<string, number>;
  // undefined: a docs-only change, nothing to run.
  text?: string;
  pipeline?: { steps: unknown[] };
  decisions: Decision[];
  docsOnly: boolean;
  files: string[];
}

// A bundled profile name (profiles/NAME.yaml next to the package) or a file path.
export function resolveProfile(name: string, cwd: string): string {
  // A bare name (no '/', no .yaml/.yml) is a bundled profile; anything else is a file.
  if (/^[a-z0-9_-]+$/i.test(name)) {
    const here = dirname(fileURLToPath(import.meta.url));
    for (const up of ['../../..', '../..', '..']) {
      const p = resolve(here, up, 'profiles', `${name}.yaml`);
      if (existsSync(p)) return p;
    }
    throw new UsageError(`--profile ${name}: no bundled profile of that name`, 'bundled: vllm; for a file, give a path (./NAME.yaml)');
  }
  return resolve(cwd, name);
}

export async function loadProfile(name: string, cwd: string): Promise<Profile> {
  const file = resolveProfile(name, cwd);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`--profile ${name}: cannot read ${file}`);
  }
  let raw: unknown = fastParseYaml(text)?.docs[0];
  if (raw === undefined) {
    const { parse } = await import('yaml');
    raw = yamlGuard(file, () => {
      try {
        return parse(text, { maxAliasCount: MAX_ALIAS_COUNT });
      } catch (err) {
        if (err instanceof RangeError || /alias/i.test((err as Error).message)) throw err;
        // npm yaml's message names the line and column; only its first line is kept.
        throw new InputError(`${file}: YAML error: ${(err as Error).message.split('\n')[0]}`);
      }
    });
  }
  return checkProfile(raw, file);
}

// A child process to completion (node:child_process: execa's load time is most of a run here).
function spawnTo(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string | undefined> },
): Promise<{ code: number | null; out: string; err: string; missing: boolean }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ? { ...process.env, ...opts.env } : process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => done({ code: null, out: '', err: e.message, missing: e.code === 'ENOENT' }));
    child.on('close', (code) => done({ code, out: Buffer.concat(out).toString('utf8'), err: Buffer.concat(err).toString('utf8'), missing: false }));
  });
}

async function git(args: string[], cwd: string, env?: Record<string, string>): Promise<{ ok: boolean; out: string; err: string }> {
  const r = await spawnTo('git', args, { cwd, env });
  if (r.missing) throw new InputError('git is not installed (or not on PATH)', 'install git, or pass --changed-files');
  return { ok: r.code === 0, out: r.out, err: r.err.trim() };
}

// The generator's changed files: `git add .` then `git diff --name-only --diff-filter=ACMDR BASE`,
// BASE = HEAD~1 on the main branch, else MERGE_BASE_COMMIT or `git merge-base origin/main HEAD`.
// bkci stages into a temporary copy of the index, so the checkout's own index is left alone.
export async function generatorChangedFiles(cwd: string, p: Profile, branch: string | undefined, env: Io['env']): Promise<string[]> {
  let base: string | undefined;
  if (branch === p.config.main_branch) base = p.changes.main_base;
  else {
    base = env[p.env.merge_base ?? ''] || undefined;
    if (!base) {
      const mb = await git(['merge-base', p.changes.merge_base_ref, 'HEAD'], cwd);
      if (!mb.ok)
        throw new InputError(
          `cannot find the merge base: git merge-base ${p.changes.merge_base_ref} HEAD failed: ${mb.err || 'not a git checkout?'}`,
          `set ${p.env.merge_base ?? 'MERGE_BASE_COMMIT'}, fetch ${p.changes.merge_base_ref}, or pass --changed-files / --diff-base`,
        );
      base = mb.out.trim();
    }
  }
  let indexEnv: Record<string, string> | undefined;
  let tmp: string | undefined;
  try {
    if (p.changes.stage_untracked) {
      const idx = await git(['rev-parse', '--git-path', 'index'], cwd);
      if (!idx.ok) throw new InputError(`not a git checkout: ${idx.err}`, 'run bkci from the repository, or pass --changed-files');
      tmp = mkdtempSync(join(tmpdir(), 'bkci-index-'));
      const copy = join(tmp, 'index');
      const real = resolve(cwd, idx.out.trim());
      if (existsSync(real)) copyFileSync(real, copy);
      indexEnv = { GIT_INDEX_FILE: copy };
      const add = await git(['add', '.'], cwd, indexEnv);
      if (!add.ok) throw new InputError(`git add . (into a temporary index) failed: ${add.err}`);
    }
    const diff = await git(['diff', '--name-only', `--diff-filter=${p.changes.diff_filter}`, base.trim()], cwd, indexEnv);
    if (!diff.ok) throw new InputError(`git diff ${base} failed: ${diff.err}`, 'fetch enough history (HEAD~1, the merge base), or pass --changed-files');
    return diff.out.split('\n').filter((l) => l.trim());
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

async function sh(command: string, io: Io): Promise<boolean> {
  const r = await spawnTo('sh', ['-c', command], { cwd: io.cwd, env: { ...io.env } });
  return r.code === 0;
}

// The $NAME replacements, resolved in order; first_existing probes the registry (the profile's `exists`).
async function resolveVariables(p: Profile, cfg: GenConfig, gen: Generator, f: Omit<Facts, 'variables'>, io: Io, probe: boolean): Promise<[string, string][]> {
  const v = p.variables;
  if (!v || !v.config_names.includes(cfg.name)) return [];
  if (probe && v.login) {
    if (!(await sh(v.login, io)))
      throw new CheckFailed('the registry login of the profile failed (variables.login)', 'log in first, or pass --no-probe to skip registry probes');
  }
  const repoKey = f.branch === p.config.main_branch ? p.image.repository.main : p.image.repository.other;
  const ctx = (n: string): string | undefined => {
    if (n.startsWith('env.')) return f.env[n.slice(4)];
    if (n.startsWith('repositories.')) return cfg.repositories[n.slice(13)];
    switch (n) {
      case 'registries':
        return cfg.registries;
      case 'repository_name':
        return cfg.repositories[repoKey];
      case 'branch':
        return f.branch;
      case 'commit':
        return f.commit;
      case 'image':
        return gen.image();
      default:
        return v.constants?.[n];
    }
  };
  const facts = { branch: f.branch, env: f.env };
  const exists = async (tag: string) => {
    if (!probe || !v.exists) return false;
    return sh(
      fill(v.exists, (n) => (n === 'tag' ? tag : undefined)),
      io,
    );
  };
  const out: [string, string][] = [];
  const one = async (d: VariableDef): Promise<string | undefined> => {
    if (d.value !== undefined) return fill(d.value, ctx);
    for (const c of d.cases ?? []) {
      if (!matches(c.when, facts)) continue;
      if (c.value !== undefined) return fill(c.value, ctx);
      for (const cand of c.first_existing ?? []) {
        const entry = typeof cand === 'string' ? { tag: cand } : cand;
        if (!matches(entry.when, facts)) continue;
        const tag = fill(entry.tag, ctx);
        if (await exists(tag)) return tag;
        if (entry.when) break; // the generator stops at a conditional candidate's fallback
      }
      return c.otherwise === undefined ? undefined : fill(c.otherwise, ctx);
    }
    return undefined;
  };
  for (const d of v.values) out.push([d.name, (await one(d)) ?? '']);
  return out;
}

function parseOnlyStepKeys(value: string | undefined, name: string): Set<string> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InputError(`${name} must be a JSON array of step keys`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new InputError(`${name} must be a non-empty JSON array`);
  if (parsed.some((k) => typeof k !== 'string' || !/^[a-zA-Z0-9_-]+$/.test(k))) throw new InputError(`${name} contains an invalid step key`);
  if (new Set(parsed).size !== parsed.length) throw new InputError(`${name} contains duplicate step keys`);
  return new Set(parsed as string[]);
}

export async function generatePipeline(req: GenerateRequest, io: Io): Promise<GenerateResult> {
  const p = await loadProfile(req.profile, io.cwd);
  const cfg = readConfig(req.config, io.cwd, p);
  const env = io.env;
  const branch = env.BUILDKITE_BRANCH || undefined;
  if (branch && p.config.branch_pattern && !new RegExp(p.config.branch_pattern).test(branch))
    throw new InputError(`BUILDKITE_BRANCH '${branch}' has characters the generator refuses (${p.config.branch_pattern})`);
  const pullRequest = env.BUILDKITE_PULL_REQUEST;

  let changed: string[];
  if (req.changedFiles !== undefined) {
    const { readInput } = await import('../../util/io.js');
    const { parseChangedFiles } = await import('../changes.js');
    changed = parseChangedFiles(await readInput(req.changedFiles, io, 'changed files'));
  } else if (req.diffBase !== undefined) {
    const { gitChangedFiles } = await import('../changes.js');
    changed = await gitChangedFiles(io.cwd, req.diffBase);
  } else changed = await generatorChangedFiles(io.cwd, p, branch, env);

  const labels =
    req.labels ??
    (env.BKCI_PR_LABELS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const e = (role: string) => (p.env[role] ? env[p.env[role]!] : undefined);
  let runAll = false;
  let runAllReason: string | undefined;
  if (e('run_all') === '1') [runAll, runAllReason] = [true, `${p.env.run_all}=1`];
  else if (p.selection.torch_nightly_runs_all && e('torch_nightly') === '1') [runAll, runAllReason] = [true, `${p.env.torch_nightly}=1`];
  else if (labels.some((l) => p.labels.run_all.includes(l))) [runAll, runAllReason] = [true, 'run-all label'];
  else {
    const inc = cfg.run_all_patterns.map((r) => pyMatch(r, 'run_all_patterns'));
    const exc = cfg.run_all_exclude_patterns.map((r) => pyMatch(r, 'run_all_exclude_patterns'));
    const hit = changed.find((file) => inc.some((re) => re.test(file)) && !exc.some((re) => re.test(file)));
    if (hit) [runAll, runAllReason] = [true, `run-all pattern: ${hit}`];
  }
  let nightly = e('nightly') ?? '0';
  if (labels.some((l) => p.labels.run_all.includes(l))) nightly = '1';
  const onlyStepKeys = parseOnlyStepKeys(e('only_step_keys'), p.env.only_step_keys ?? 'only_step_keys');

  let otelBundle: string | undefined;
  if (req.otelBundle !== undefined) otelBundle = readFileSync(resolve(io.cwd, req.otelBundle), 'utf8').trim();

  const base: Omit<Facts, 'variables'> = {
    env,
    branch,
    commit: env.BUILDKITE_COMMIT,
    pullRequest,
    changed,
    labels,
    runAll,
    runAllReason,
    nightly,
    torchNightly: e('torch_nightly') ?? '0',
    onlyStepKeys,
    otelBundle,
  };

  // Docs-only changes: nothing is generated; the marker file and annotation say why.
  const dd = p.docs_only;
  if (dd && (e('docs_only_disable') ?? '0') === '0' && !runAll && onlyStepKeys === undefined && isDocsOnly(changed, dd)) {
    io.log.info({ changed: changed.length }, 'all changes are documentation: no pipeline');
    if (dd.annotate?.length) {
      const r = await spawnTo(dd.annotate[0]!, dd.annotate.slice(1), { cwd: io.cwd, env: { ...io.env } });
      if (r.code !== 0) io.log.warn({ cmd: dd.annotate.join(' ') }, 'the docs-only annotation failed (buildkite-agent missing?)');
    }
    if (dd.marker && req.output) {
      const { writeIfChanged } = await import('../../util/atomic-write.js');
      await writeIfChanged(join(dirname(resolve(io.cwd, req.output)), dd.marker), 'true', 0o644);
    }
    return { decisions: [], docsOnly: true, files: [] };
  }

  async function buildFrom(steps: import('./areas.js').AreaStep[]) {
    checkSteps(steps, p);
    let selected = steps;
    if (onlyStepKeys) selected = selectWithDependencies(steps, onlyStepKeys, p.env.only_step_keys ?? '');
    const gen0 = new Generator(cfg, p, { ...base, variables: [] });
    if (gen0.otelEnabled() && otelBundle === undefined && !warnedOtel) {
      warnedOtel = true;
      io.log.warn({}, "this build gets command tracing from vLLM's generator; without --otel-bundle the tracing lines are left out");
    }
    variables ??= await resolveVariables(p, cfg, gen0, base, io, req.probe);
    const facts: Facts = { ...base, onlyStepKeys: onlyStepKeys ? new Set(selected.map((s) => s.key!).filter(Boolean)) : undefined, variables };
    const { pipeline, decisions } = new Generator(cfg, p, { ...facts, unselected: req.unselected }).generate(selected);
    let jobsPerChoice: Record<string, number> | undefined;
    if (req.countChoices) {
      const { documentJobs } = await import('../upload/count.js');
      jobsPerChoice = {};
      for (const mode of ['block', 'group-block', 'skip'] as const)
        jobsPerChoice[mode] = documentJobs(new Generator(cfg, p, { ...facts, unselected: mode }).generate(selected).pipeline);
    }
    // Strings a YAML reader could take for another type are quoted (as pipeline upload writes them).
    const { toYaml } = await import('../upload/serialize.js');
    return { text: toYaml(pipeline), pipeline, decisions, jobsPerChoice };
  }
  let warnedOtel = false;
  let variables: [string, string][] | undefined;
  const order = req.fileOrder ?? p.test_areas.file_order;
  const first = readTestAreas(cfg, io.cwd, p, order);
  for (const w of first.warnings) io.log.warn({ file: `${w.file}:${w.line}` }, w.message);
  await warnDeadDependencies(first.steps, io);
  let built;
  try {
    built = await buildFrom(first.steps);
  } catch (err) {
    // Steps read by the fast parser carry no line numbers: read again with them for the message.
    if (!(err instanceof InputError)) throw err;
    built = await buildFrom(readTestAreas(cfg, io.cwd, p, order, true).steps);
  }
  const { text, pipeline, decisions, jobsPerChoice } = built;
  const files = first.files;
  return { text, pipeline, decisions, docsOnly: false, files, jobsPerChoice };
}

// A source_file_dependencies entry that matches no tracked file can never select its step.
async function warnDeadDependencies(steps: import('./areas.js').AreaStep[], io: Io): Promise<void> {
  const r = await spawnTo('git', ['ls-files', '-z'], { cwd: io.cwd });
  if (r.code !== 0) return;
  const tracked = r.out.split('\0').filter(Boolean);
  if (tracked.length === 0) return;
  const dead = new Map<string, string[]>();
  const alive = new Set<string>();
  for (const s of steps)
    for (const raw of [
      ...(s.source_file_dependencies ?? []),
      ...Object.values(s.mirror ?? {}).flatMap((m) => (Array.isArray(m.source_file_dependencies) ? m.source_file_dependencies : [])),
    ]) {
      const d = String(raw);
      if (d.startsWith('!') || alive.has(d)) continue;
      if (!dead.has(d)) {
        if (dependenciesMatch([d], tracked)) {
          alive.add(d);
          continue;
        }
        dead.set(d, []);
      }
      dead.get(d)!.push(`${s.file}:${s.line}`);
    }
  for (const [prefix, where] of dead)
    io.log.warn(
      { prefix, steps: where.length > 5 ? [...where.slice(0, 5), `and ${where.length - 5} more`] : where },
      'source_file_dependencies entry matches no tracked file (typo? no change will select these steps)',
    );
}

function isDocsOnly(changed: string[], d: NonNullable<Profile['docs_only']>): boolean {
  if (changed.length === 0) return false;
  return changed.every((f) => !f || d.prefixes.some((p) => f.startsWith(p)) || d.suffixes.some((s) => f.endsWith(s)) || d.files.includes(f));
}

// VLLM_CI_ONLY_STEP_KEYS: the listed keys and their depends_on closure (keys as written).
function selectWithDependencies(steps: import('./areas.js').AreaStep[], keys: Set<string>, name: string) {
  const byKey = new Map<string, import('./areas.js').AreaStep>();
  for (const s of steps) if (s.key) byKey.set(s.key, s);
  const missing = [...keys].filter((k) => !byKey.has(k)).sort();
  if (missing.length) throw new InputError(`${name}: unknown CI step key(s): ${missing.join(', ')}`);
  const sel = new Set(keys);
  const pending = [...keys];
  while (pending.length) {
    const k = pending.pop()!;
    for (const d of byKey.get(k)!.depends_on ?? []) {
      if (!byKey.has(d)) throw new InputError(`${name}: CI step ${k} depends on unknown step ${d}`);
      if (!sel.has(d)) {
        sel.add(d);
        pending.push(d);
      }
    }
  }
  return steps.filter((s) => s.key !== undefined && sel.has(s.key));
}

// Python's re.match: anchored at the start only. The common regex syntax is shared; Python-only
// constructs are refused with the pattern named.
function pyMatch(pattern: string, field: string): RegExp {
  try {
    return new RegExp('^(?:' + pattern + ')', 'u');
  } catch {
    try {
      return new RegExp('^(?:' + pattern + ')');
    } catch (err) {
      throw new InputError(`${field}: '${pattern}' is not a regular expression bkci can read: ${(err as Error).message}`);
    }
  }
}
