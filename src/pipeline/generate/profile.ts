// A generate profile: every site-specific value of a test-area pipeline generator as data
// (queues, plugin bodies, images, setup commands, mirror rules, retry lists). profiles/vllm.yaml
// reproduces vLLM's generator; docs/generate.md describes each section.
import { InputError } from '../../util/errors.js';

export type Cond = Record<string, unknown>;
export interface SetupEntry {
  command: string;
  when?: Cond;
}
export interface VariableCase {
  when?: Cond;
  value?: string;
  first_existing?: (string | { tag: string; when?: Cond })[];
  otherwise?: string;
}
export interface VariableDef {
  name: string;
  value?: string;
  cases?: VariableCase[];
}
export interface DeviceDef {
  vendor?: string;
  gpus?: number;
  queue?: string;
  agent_tags?: boolean;
  retry_prepend?: Record<string, unknown>;
  timeout?: { default: number; max: number };
}
export interface MirrorDef {
  vendor: string;
  group: string;
  key_prefix: string;
  block_key_prefix: string;
  label: string;
  mirror_block_label: string;
  build_key: string;
  rename_depends_on: Record<string, string>;
  native_group_export: string;
  command: string;
  artifact_paths: string[];
  priority: number;
  timeout: { default: number; max: number };
  native_runs_when_changed: string[];
  mirror_runs_when_changed: string[];
  retry: Record<string, unknown>;
  visible_devices: Record<string, string>;
  env: {
    all: Record<string, string>;
    native_remove: string[];
    native_defaults: Record<string, string>;
    native: Record<string, string>;
    dind: Record<string, string>;
  };
  native_plugin: Record<string, unknown>;
  // The hand-written vendor steps the mirrors replace (`bkci pipeline lint --mirrors`).
  handwritten?: HandwrittenDef;
}
export interface HandwrittenDef {
  // The file of hand-written steps (relative to the current directory) and the key of its step list.
  file?: string;
  steps?: string;
  // Test-area field name -> the hand-written file's name for it (device: agent_pool, num_devices: num_gpus).
  fields?: Record<string, string>;
  // Values a hand-written step has when it does not say (working_dir, dind).
  defaults?: { working_dir?: string; dind?: boolean };
  // A regular expression whose group `name` is a label's test name, for matching labels that differ
  // in their hardware prefix (`:amd: (MI300) Samplers` and `:amd: (MI355) Samplers` are both `Samplers`).
  name_pattern?: string;
}
export interface Profile {
  profile: string;
  source?: string;
  config: { required: string[]; github_repo_name_default: string; github_repo_name_pattern?: string; branch_pattern?: string; main_branch: string };
  env: Record<string, string>;
  test_areas: {
    file_order: 'directory' | 'sorted';
    extension: string;
    default_working_dir?: { repo: string; dir: string };
    file_is_dependency: boolean;
    ungrouped: string;
  };
  changes: { diff_filter: string; main_base: string; merge_base_ref: string; stage_untracked: boolean };
  docs_only?: { prefixes: string[]; suffixes: string[]; files: string[]; annotate?: string[]; marker?: string };
  labels: { run_all: string[] };
  selection: { always_run_key_prefixes: string[]; always_run_keys: string[]; torch_nightly_runs_all: boolean };
  quirks: { single_to_double_quotes: boolean };
  priority: { default: number; high?: { env_value: string; priority: number } };
  retry: { prepend_unless_present?: Record<string, unknown> };
  devices: Record<string, DeviceDef>;
  external_keys?: string[];
  queues: { when?: Cond; queue: string }[];
  image: { template: string; repository: { main: string; other: string }; torch_nightly_suffix?: string };
  plugin_skip_label_prefixes: string[];
  mount_agent?: { field: string; labels: string[] };
  plugin_rules: { when?: Cond; plugin: string; image_replace?: Record<string, string>; image_suffix?: string; mount_agent?: boolean }[];
  plugins: Record<string, Record<string, unknown>>;
  setup: Record<string, (string | SetupEntry)[]>;
  commands: {
    echo: string;
    preview: { length: number; strip: string[] };
    continue_on_failure: { start: string; wrap: string; end: string };
  };
  variables?: { config_names: string[]; login?: string; exists?: string; constants?: Record<string, string>; values: VariableDef[] };
  otel?: {
    repo: string;
    pull_request: string;
    trusted_branches: string[];
    treatment_branch_env?: string;
    treatment_source?: { env: string; value: string };
    setup: string;
    wrap: string;
  };
  precommit?: {
    group: string;
    label: string;
    key: string;
    queue: string;
    gate_dependency_contains: string;
    program_vars: Record<string, string>;
    command: string;
    program: string;
  };
  mirrors: Record<string, MirrorDef>;
  step_overrides?: { key: string; env_from_environment?: Record<string, string>; timeout?: { when?: Cond; minutes: number }[] }[];
}

const REQUIRED: (keyof Profile)[] = [
  'profile',
  'config',
  'env',
  'test_areas',
  'changes',
  'labels',
  'selection',
  'quirks',
  'priority',
  'retry',
  'devices',
  'queues',
  'image',
  'plugin_rules',
  'plugins',
  'setup',
  'commands',
  'mirrors',
];

// Checks the shape the generator relies on; a wrong profile is exit 2 naming the field.
export function checkProfile(raw: unknown, file: string): Profile {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError(`${file}: a profile is a YAML mapping`);
  const p = raw as Record<string, unknown>;
  for (const k of REQUIRED) if (p[k] === undefined) throw new InputError(`${file}: profile field '${k}' is missing`, 'see docs/generate.md, "Profile file"');
  const prof = raw as Profile;
  for (const [i, r] of prof.plugin_rules.entries())
    if (!prof.plugins[r.plugin]) throw new InputError(`${file}: plugin_rules[${i}].plugin: no plugin named '${r.plugin}' under plugins`);
  if (!Array.isArray(prof.queues) || prof.queues.length === 0) throw new InputError(`${file}: queues: at least one rule is needed`);
  if (prof.test_areas.file_order !== 'directory' && prof.test_areas.file_order !== 'sorted')
    throw new InputError(`${file}: test_areas.file_order: 'directory' or 'sorted'`);
  for (const [name, m] of Object.entries(prof.mirrors))
    for (const k of ['vendor', 'group', 'key_prefix', 'label', 'command', 'env'] as const)
      if (m[k] === undefined) throw new InputError(`${file}: mirrors.${name}.${k} is missing`);
  return prof;
}

// Facts a `when` condition can test.
export interface CondFacts {
  label?: string;
  device?: string;
  vendor?: string;
  num_devices?: number;
  branch?: string;
  multi_gpu?: boolean;
  env: Readonly<Record<string, string | undefined>>;
}

const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

// Every listed condition must hold; a list value means "any of".
export function matches(when: Cond | undefined, f: CondFacts): boolean {
  if (!when) return true;
  for (const [k, v] of Object.entries(when)) {
    switch (k) {
      case 'label':
        if (!asList(v).includes(f.label)) return false;
        break;
      case 'label_prefix':
        if (!asList(v).some((p) => (f.label ?? '').startsWith(String(p)))) return false;
        break;
      case 'label_contains':
        if (!asList(v).some((p) => (f.label ?? '').includes(String(p)))) return false;
        break;
      case 'device':
        if (f.device === undefined || !asList(v).includes(f.device)) return false;
        break;
      case 'vendor':
        if (f.vendor === undefined || !asList(v).includes(f.vendor)) return false;
        break;
      case 'num_devices':
        if (f.num_devices === undefined || !asList(v).includes(f.num_devices)) return false;
        break;
      case 'branch':
        if (f.branch === undefined || !asList(v).includes(f.branch)) return false;
        break;
      case 'multi_gpu':
        if (Boolean(f.multi_gpu) !== Boolean(v)) return false;
        break;
      case 'env':
        for (const [name, want] of Object.entries(v as Record<string, string>)) if (f.env[name] !== String(want)) return false;
        break;
      case 'env_not':
        for (const [name, want] of Object.entries(v as Record<string, string>)) if (f.env[name] === String(want)) return false;
        break;
      case 'env_set':
        for (const name of asList(v)) if (!f.env[String(name)]) return false;
        break;
      default:
        throw new InputError(
          `profile: unknown condition '${k}'`,
          'conditions: label, label_prefix, label_contains, device, vendor, num_devices, branch, multi_gpu, env, env_not, env_set',
        );
    }
  }
  return true;
}

export type TemplateValue = string | number | undefined;

// Docker tag cleaning as vLLM's generator does it: anything but [a-zA-Z0-9_.-] becomes '-'.
const FILTERS: Record<string, (s: string) => string> = {
  docker_tag: (s) => s.replace(/[^a-zA-Z0-9_.-]/g, '-'),
};

const PLACEHOLDER = /\{\{\s*([\w.-]+)(?:\s*\|\s*(\w+))?\s*\}\}/g;

// '{{name}}' and '{{name|filter}}' in one pass (values are never expanded again).
export function fill(template: string, ctx: (name: string) => TemplateValue): string {
  return template.replace(PLACEHOLDER, (_m, name: string, filter?: string) => {
    const v = ctx(name);
    const s = v === undefined ? '' : String(v);
    if (!filter) return s;
    const fn = FILTERS[filter];
    if (!fn) throw new InputError(`profile: unknown template filter '${filter}'`, `filters: ${Object.keys(FILTERS).join(', ')}`);
    return fn(s);
  });
}

// A deep copy of a plugin body with placeholders filled; a string that is exactly one placeholder
// takes the value's own type (a number stays a number).
export function fillDeep(value: unknown, ctx: (name: string) => TemplateValue): unknown {
  if (typeof value === 'string') {
    const whole = /^\{\{\s*([\w.-]+)\s*\}\}$/.exec(value);
    if (whole) {
      const v = ctx(whole[1]!);
      return v === undefined ? '' : v;
    }
    return fill(value, ctx);
  }
  if (Array.isArray(value)) return value.map((v) => fillDeep(v, ctx));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fillDeep(v, ctx);
    return out;
  }
  return value;
}

// Python's str ordering: by code point (JavaScript's < compares UTF-16 units).
export function comparePy(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}
