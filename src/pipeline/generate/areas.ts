// Reading a generator config (vLLM's .buildkite/ci_config.yaml) and its test-area files, with the
// checks users need: unknown keys warn (with a did-you-mean), wrong types and broken references are
// exit 2 naming file:line.
import { closeSync, opendirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { InputError } from '../../util/errors.js';
import { fastParseYaml } from '../../util/fast-yaml.js';
import { describeYamlError } from '../yaml-compose.js';
import { decodeUtf8, firstNonPrintable, invalidUtf8Message, nonPrintableMessage } from '../text-check.js';
import type { Profile } from './profile.js';

export interface GenConfig {
  name: string;
  github_repo_name: string;
  job_dirs: string[];
  registries: string;
  repositories: Record<string, string>;
  run_all_patterns: string[];
  run_all_exclude_patterns: string[];
}

export interface AreaStep {
  label: string;
  group: string;
  working_dir?: string;
  key?: string;
  depends_on?: string[];
  commands?: string[];
  device?: string;
  agent_tags?: Record<string, string>;
  num_devices?: number;
  num_nodes?: number;
  source_file_dependencies?: string[];
  soft_fail?: boolean;
  parallelism?: number;
  concurrency?: number;
  concurrency_group?: string;
  timeout_in_minutes?: number;
  mount_buildkite_agent?: boolean;
  env?: Record<string, string>;
  retry?: Record<string, unknown>;
  optional?: boolean;
  no_plugin?: boolean;
  no_gpu?: boolean;
  dind: boolean;
  mirror?: Record<string, Record<string, unknown>>;
  // Where it was written, for messages (mirror_line: its `mirror:` key; 0 when read without line numbers).
  file: string;
  line: number;
  mirror_line?: number;
}

export interface Warning {
  file: string;
  line: number;
  message: string;
}

export const STEP_FIELDS = [
  'label',
  'group',
  'working_dir',
  'key',
  'depends_on',
  'commands',
  'device',
  'agent_tags',
  'num_devices',
  'num_nodes',
  'source_file_dependencies',
  'soft_fail',
  'parallelism',
  'concurrency',
  'concurrency_group',
  'timeout_in_minutes',
  'mount_buildkite_agent',
  'env',
  'retry',
  'optional',
  'no_plugin',
  'no_gpu',
  'dind',
  'mirror',
] as const;

// The keys of a mirror entry (mirror.amd) the generator reads.
export const MIRROR_FIELDS = [
  'device',
  'num_devices',
  'num_gpus',
  'commands',
  'working_dir',
  'env',
  'depends_on',
  'dind',
  'no_plugin',
  'no_gpu',
  'num_nodes',
  'soft_fail',
  'concurrency',
  'concurrency_group',
  'timeout_in_minutes',
  'agent_tags',
  'label',
  'source_file_dependencies',
  'optional',
] as const;

// Names from the older Jinja schema (test-pipeline.yaml, test-amd.yaml) and common slips.
const ALIASES: Record<string, string> = {
  num_gpus: 'num_devices',
  gpu: 'device',
  gpus: 'num_devices',
  command: 'commands',
  agent_pool: 'device',
  mirror_hardwares: 'mirror',
  source_dependencies: 'source_file_dependencies',
  timeout: 'timeout_in_minutes',
  depends: 'depends_on',
  workdir: 'working_dir',
};

function distance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

export function didYouMean(key: string, known: readonly string[]): string | undefined {
  if (ALIASES[key] && known.includes(ALIASES[key]!)) return ALIASES[key];
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dd = distance(key, k);
    if (dd < bestD) {
      bestD = dd;
      best = k;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

// Plain scalars that YAML 1.1 (PyYAML, which vLLM's generator reads with) types differently from
// YAML 1.2 (the fast parser): such a file goes through npm `yaml` in 1.1 mode.
const YAML11_RISK =
  /(?:^|[\s:[{,-])(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|[-+]?0[\d_]+|[-+]?[\d.][\d_.]*[eE][-+]?\d+|[-+]?0b[01_]+|[-+]?\d[\d_]*(?::[0-5]?\d)+(?:\.\d*)?|[-+]?\d+_[\d_]*(?:\.\d*)?|[-+]?\.\d+|=|<<)\s*(?:$|[,\]}#])/m;

// npm `yaml`'s YAML 1.1 schema, with the plain scalars typed as PyYAML's resolver types them (its
// implicit resolvers for bool, int and float): `y`/`n` are strings, not booleans; a decimal integer
// has no leading zero (`08` is a string); a float has a dot, and its exponent a sign (`1e3` and
// `1.0e3` are strings); a sexagesimal integer starts with 1-9.
const PYYAML_TESTS: [RegExp, RegExp][] = [
  [/^(?:Y|y|[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$/, /^(?:[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$/],
  [/^(?:N|n|[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$/, /^(?:[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$/],
  [/^[-+]?[0-9][0-9_]*$/, /^[-+]?(?:0|[1-9][0-9_]*)$/],
  [/^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$/, /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)[eE][-+][0-9]+$/],
  [/^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*$/, /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)$/],
  [/^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+$/, /^[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+$/],
];
type Tags = Exclude<Parameters<typeof parseDocument>[1], undefined>['customTags'];
const pyyamlTags: Tags = (tags) =>
  tags.map((t) => {
    const test = typeof t === 'object' && 'test' in t && t.test instanceof RegExp ? t.test.source : undefined;
    const py = test === undefined ? undefined : PYYAML_TESTS.find(([npm]) => npm.source === test)?.[1];
    return py ? (Object.assign(Object.create(Object.getPrototypeOf(t) as object) as object, t, { test: py }) as typeof t) : t;
  });

interface Loaded {
  data: unknown;
  lineOf: (node: YamlNode | null | undefined) => number;
  doc?: ReturnType<typeof parseDocument>;
}

// precise: with line numbers (npm `yaml`); otherwise the fast parser when the file allows it, and
// line numbers are 0 (the caller re-reads precisely when it has something to report).
function loadYaml(path: string, shown: string, precise = true): Loaded {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new InputError(`${shown}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  // PyYAML refuses what go-yaml and serde_yaml refuse: bytes that are not UTF-8, control characters.
  const decoded = decodeUtf8(bytes);
  if ('invalid' in decoded) {
    const { line, col, byte } = decoded.invalid;
    throw new InputError(`${shown}:${line}:${col}: ${invalidUtf8Message(byte, 'file', "vLLM's generator")}`, 'convert the file, e.g. iconv -f LATIN1 -t UTF-8');
  }
  const text = decoded.text;
  const bad = firstNonPrintable(text);
  if (bad) throw new InputError(`${shown}:${bad.line}:${bad.col}: ${nonPrintableMessage(bad.code, "PyYAML, which vLLM's generator reads with,")}`);
  if (!precise && !YAML11_RISK.test(text)) {
    const fast = fastParseYaml(text);
    if (fast && fast.docs.length === 1 && fast.repeatedKeys.length === 0) return { data: fast.docs[0], lineOf: () => 0 };
  }
  const lc = new LineCounter();
  // YAML 1.1 as PyYAML's safe_load reads it (yes/no/on/off booleans, merge keys); a repeated key keeps the last value.
  const doc = yamlGuard(shown, () => parseDocument(text, { lineCounter: lc, version: '1.1', customTags: pyyamlTags, uniqueKeys: false, prettyErrors: false }));
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    // npm yaml reports a stack overflow of its own composer as an error of the document.
    if (/Maximum call stack/.test(e.message))
      throw new InputError(`${shown}: the YAML nests too deeply to read`, 'a test-area or config file nests a few levels; check the file');
    throw new InputError(`${shown}:${pos.line}:${pos.col}: YAML error: ${describeYamlError(e.code, e.message, text.slice(e.pos[0]))}`);
  }
  const lineOf = (node: YamlNode | null | undefined) => (node?.range ? lc.linePos(node.range[0]).line : 1);
  return { data: yamlGuard(shown, () => doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })), lineOf, doc };
}

// Hostile YAML: aliases that expand without bound (a "billion laughs" file) and nesting deep enough
// to exhaust the stack are refused in bkci's words, naming the file, not left to npm yaml's own
// text or a stack overflow. npm yaml's alias count weighs each alias by what it expands to.
export const MAX_ALIAS_COUNT = 10_000;
export function yamlGuard<T>(shown: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof RangeError)
      throw new InputError(`${shown}: the YAML nests too deeply to read`, 'a test-area or config file nests a few levels; check the file');
    if (err instanceof Error && /alias/i.test(err.message))
      throw new InputError(`${shown}: the YAML's aliases expand too far (more than ${MAX_ALIAS_COUNT} nodes through aliases)`, 'use fewer or smaller anchors');
    throw err;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function readConfig(path: string, cwd: string, profile: Profile): GenConfig {
  const shown = relative(cwd, resolve(cwd, path)) || path;
  const { data } = loadYaml(resolve(cwd, path), shown);
  if (!isObj(data)) throw new InputError(`${shown}: the config is a YAML mapping (name, job_dirs, registries, repositories, ...)`);
  for (const k of profile.config.required)
    if (!data[k]) throw new InputError(`${shown}: '${k}' is required`, 'vLLM configs name: name, job_dirs, registries, repositories');
  if (!Array.isArray(data.job_dirs) || data.job_dirs.some((d) => typeof d !== 'string')) throw new InputError(`${shown}: job_dirs: a list of directories`);
  if (!isObj(data.repositories)) throw new InputError(`${shown}: repositories: a mapping (main, premerge)`);
  const repoName = data.github_repo_name === undefined ? profile.config.github_repo_name_default : String(data.github_repo_name);
  if (data.github_repo_name !== undefined && profile.config.github_repo_name_pattern && !new RegExp(profile.config.github_repo_name_pattern).test(repoName))
    throw new InputError(`${shown}: github_repo_name '${repoName}' does not match ${profile.config.github_repo_name_pattern}`);
  for (const d of data.job_dirs as string[]) {
    try {
      statSync(resolve(cwd, d));
    } catch {
      throw new InputError(`${shown}: job_dirs: '${d}' not found (relative to ${cwd})`, 'run bkci from the repository root, as the generator is run');
    }
  }
  const strList = (k: string): string[] => {
    const v = data[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new InputError(`${shown}: ${k}: a list of regular expressions`);
    return v.map(String);
  };
  return {
    name: String(data.name),
    github_repo_name: repoName,
    job_dirs: data.job_dirs as string[],
    registries: String(data.registries),
    repositories: Object.fromEntries(Object.entries(data.repositories).map(([k, v]) => [k, String(v)])),
    run_all_patterns: strList('run_all_patterns'),
    run_all_exclude_patterns: strList('run_all_exclude_patterns'),
  };
}

// os.walk(top) as Python does it: top-down, each directory's entries in the order the file system
// lists them ('directory', no sorting) or by name ('sorted'); symbolic links to directories are
// listed but not entered.
export function walkFiles(top: string, order: 'directory' | 'sorted'): string[] {
  const out: string[] = [];
  const visit = (dir: string) => {
    const entries: Dirent[] = [];
    let handle;
    try {
      handle = opendirSync(dir);
    } catch {
      return;
    }
    try {
      for (let e = handle.readSync(); e !== null; e = handle.readSync()) entries.push(e);
    } finally {
      handle.closeSync();
    }
    if (order === 'sorted') entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dirs: string[] = [];
    for (const e of entries) {
      const p = join(dir, e.name);
      let isDir = e.isDirectory();
      if (e.isSymbolicLink()) {
        try {
          isDir = statSync(p).isDirectory();
        } catch {
          isDir = false;
        }
        if (isDir) continue; // listed, not walked into (followlinks=False)
      }
      if (isDir) dirs.push(p);
      else out.push(p);
    }
    for (const d of dirs) visit(d);
  };
  visit(top);
  return out;
}
void closeSync;

interface ReadResult {
  steps: AreaStep[];
  warnings: Warning[];
  files: string[];
}

// Every *.yaml file under the job directories, in walk order, parsed into steps.
export function readTestAreas(cfg: GenConfig, cwd: string, profile: Profile, fileOrder: 'directory' | 'sorted', precise = false): ReadResult {
  const steps: AreaStep[] = [];
  const warnings: Warning[] = [];
  const files: string[] = [];
  for (const dir of cfg.job_dirs) {
    for (const abs of walkFiles(resolve(cwd, dir), fileOrder)) {
      if (!abs.endsWith(profile.test_areas.extension)) continue;
      const rel = relative(cwd, abs);
      files.push(rel);
      // Fast first; again with line numbers when the file has something to report.
      const found: Warning[] = [];
      let got: AreaStep[] | undefined;
      if (!precise)
        try {
          got = readAreaFile(abs, rel, cfg, profile, found, false);
        } catch {
          got = undefined;
        }
      if (got === undefined || found.length) {
        found.length = 0;
        got = readAreaFile(abs, rel, cfg, profile, found, true);
      }
      warnings.push(...found);
      steps.push(...got);
    }
  }
  return { steps, warnings, files };
}

function readAreaFile(abs: string, rel: string, cfg: GenConfig, profile: Profile, warnings: Warning[], precise: boolean): AreaStep[] {
  const { data, lineOf, doc } = loadYaml(abs, rel, precise);
  if (!isObj(data)) throw new InputError(`${rel}:1:1: a test-area file is a mapping with group, depends_on and steps`);
  const group = data.group ? String(data.group) : '';
  const fileDeps = data.depends_on;
  if (fileDeps !== undefined && fileDeps !== null && !(Array.isArray(fileDeps) && fileDeps.every((d) => typeof d === 'string')))
    throw new InputError(`${rel}:${lineOf(doc?.get('depends_on', true) as YamlNode)}: depends_on: a list of step keys`);
  const rawSteps = data.steps ?? [];
  if (!Array.isArray(rawSteps)) throw new InputError(`${rel}:${lineOf(doc?.get('steps', true) as YamlNode)}: steps: a list of steps`);
  for (const k of Object.keys(data))
    if (!['group', 'depends_on', 'steps'].includes(k)) {
      const node = (doc?.contents as { items?: { key: YamlNode; value: YamlNode }[] } | undefined)?.items?.find(
        (p) => (p.key as { value?: unknown }).value === k,
      );
      warnings.push({ file: rel, line: lineOf(node?.key), message: `unknown top-level key '${k}' (ignored; a test-area file has group, depends_on, steps)` });
    }
  const seqNode = doc?.get('steps', true);
  const stepNodes = isSeq(seqNode) ? (seqNode.items as YamlNode[]) : [];
  const out: AreaStep[] = [];
  rawSteps.forEach((raw: unknown, i: number) => {
    const node = stepNodes[i];
    const line = lineOf(node);
    const keyLine = (k: string) => {
      if (isMap(node)) {
        const pair = node.items.find((p) => (p.key as { value?: unknown }).value === k);
        if (pair) return lineOf(pair.key as YamlNode);
      }
      return line;
    };
    const step = parseStep(raw, rel, line, keyLine, warnings);
    step.group = group || step.group;
    if (Array.isArray(fileDeps) && fileDeps.length > 0) {
      if (!step.depends_on || step.depends_on.length === 0) step.depends_on = [...(fileDeps as string[])];
      const dwd = profile.test_areas.default_working_dir;
      if (!step.working_dir && dwd && cfg.github_repo_name === dwd.repo) step.working_dir = dwd.dir;
      if (profile.test_areas.file_is_dependency) step.source_file_dependencies = [...(step.source_file_dependencies ?? []), rel];
    }
    out.push(step);
  });
  return out;
}

function parseStep(raw: unknown, file: string, line: number, keyLine: (k: string) => number, warnings: Warning[]): AreaStep {
  const where = (k?: string) => `${file}:${k ? keyLine(k) : line}`;
  if (!isObj(raw)) throw new InputError(`${where()}: a step is a mapping (label, commands, ...)`);
  const label = raw.label;
  if (typeof label !== 'string') throw new InputError(`${where()}: step needs a 'label' (a string)`);
  const name = `step '${label}'`;
  for (const k of Object.keys(raw)) {
    if ((STEP_FIELDS as readonly string[]).includes(k)) continue;
    const hint = didYouMean(k, STEP_FIELDS);
    warnings.push({
      file,
      line: keyLine(k),
      message: `unknown key '${k}' in ${name} is ignored (vLLM's generator drops it silently)${hint ? `; did you mean '${hint}'?` : ''}`,
    });
  }
  const str = (k: string): string | undefined => {
    const v = raw[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new InputError(`${where(k)}: ${name}: ${k} must be a string`);
    return v;
  };
  const int = (k: string): number | undefined => {
    const v = raw[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) return Number(v);
    throw new InputError(`${where(k)}: ${name}: ${k} must be an integer`);
  };
  const bool = (k: string, dflt: boolean | undefined): boolean | undefined => {
    const v = raw[k];
    if (v === undefined) return dflt;
    if (v === null) return undefined;
    if (typeof v === 'boolean') return v;
    throw new InputError(`${where(k)}: ${name}: ${k} must be true or false`);
  };
  const strList = (k: string): string[] | undefined => {
    const v = raw[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new InputError(`${where(k)}: ${name}: ${k} must be a list of strings`);
    return [...(v as string[])];
  };
  const strMap = (k: string): Record<string, string> | undefined => {
    const v = raw[k];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string'))
      throw new InputError(`${where(k)}: ${name}: ${k} must be a mapping of strings (quote numbers: "1")`);
    return { ...(v as Record<string, string>) };
  };
  const dind = raw.dind === undefined ? true : raw.dind;
  if (typeof dind !== 'boolean') throw new InputError(`${where('dind')}: ${name}: dind must be true or false`);
  const retry = raw.retry;
  if (retry !== undefined && retry !== null && !isObj(retry)) throw new InputError(`${where('retry')}: ${name}: retry must be a mapping`);
  const mirror = raw.mirror;
  if (mirror !== undefined && mirror !== null && (!isObj(mirror) || Object.values(mirror).some((m) => !isObj(m))))
    throw new InputError(`${where('mirror')}: ${name}: mirror must map a vendor to a mapping (mirror: {amd: {device: ...}})`);
  for (const [vendor, m] of Object.entries((mirror as Record<string, Record<string, unknown>> | null) ?? {})) {
    for (const k of Object.keys(m)) {
      if ((MIRROR_FIELDS as readonly string[]).includes(k)) continue;
      const hint = k === 'parallelism' ? undefined : didYouMean(k, MIRROR_FIELDS);
      warnings.push({
        file,
        line: keyLine('mirror'),
        message:
          k === 'parallelism'
            ? `mirror.${vendor}.parallelism in ${name} is ignored: vLLM's generator gives the mirror the step's own parallelism`
            : `unknown key mirror.${vendor}.${k} in ${name} is ignored${hint ? `; did you mean '${hint}'?` : ''}`,
      });
    }
    if (m.working_dir !== undefined && !m.commands)
      warnings.push({
        file,
        line: keyLine('mirror'),
        message: `mirror.${vendor}.working_dir in ${name} is ignored without mirror.${vendor}.commands (vLLM's generator uses the step's working_dir then)`,
      });
  }
  const step: AreaStep = {
    label,
    group: str('group') ?? '',
    working_dir: str('working_dir'),
    key: str('key'),
    depends_on: strList('depends_on'),
    commands: strList('commands'),
    device: str('device'),
    agent_tags: strMap('agent_tags'),
    num_devices: int('num_devices'),
    num_nodes: int('num_nodes'),
    source_file_dependencies: strList('source_file_dependencies'),
    soft_fail: bool('soft_fail', false),
    parallelism: int('parallelism'),
    concurrency: undefined,
    concurrency_group: str('concurrency_group'),
    timeout_in_minutes: int('timeout_in_minutes'),
    mount_buildkite_agent: bool('mount_buildkite_agent', false),
    env: strMap('env'),
    retry: (retry as Record<string, unknown> | null) ?? undefined,
    optional: bool('optional', false),
    no_plugin: bool('no_plugin', false),
    no_gpu: bool('no_gpu', false),
    dind,
    mirror: (mirror as Record<string, Record<string, unknown>> | null) ?? undefined,
    file,
    line,
    mirror_line: mirror ? keyLine('mirror') : undefined,
  };
  const c = raw.concurrency;
  if (c !== undefined && c !== null) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c <= 0)
      throw new InputError(`${where('concurrency')}: ${name}: concurrency must be an integer above 0`);
    step.concurrency = c;
  }
  if ((step.concurrency === undefined) !== (step.concurrency_group === undefined))
    throw new InputError(
      `${where(step.concurrency === undefined ? 'concurrency_group' : 'concurrency')}: ${name}: concurrency and concurrency_group must be given together`,
    );
  if (step.concurrency_group !== undefined && !step.concurrency_group.trim())
    throw new InputError(`${where('concurrency_group')}: ${name}: concurrency_group is empty`);
  if (step.num_nodes && !step.num_devices) throw new InputError(`${where('num_nodes')}: ${name}: num_nodes needs num_devices`);
  return step;
}
