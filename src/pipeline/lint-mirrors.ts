// `bkci pipeline lint --mirrors`: every `mirror:` declaration of the test areas, as the generator
// would emit it for the vendor, against the hand-written vendor step it is meant to replace (vLLM:
// the AMD steps of .buildkite/test-amd.yaml). The comparison is pure (compareMirrors); the edge
// (lintMirrors) reads the profile, the config, the test areas and the hand-written file.
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { LineCounter, isMap, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { InputError } from '../util/errors.js';
import type { AreaStep } from './generate/areas.js';
import { generateStepKey } from './generate/build.js';
import type { HandwrittenDef, MirrorDef, Profile } from './generate/profile.js';

// A hand-written vendor step as read: its fields and where it is.
export interface HandStep {
  label: string;
  fields: Record<string, unknown>;
  file: string;
  line: number;
}

export interface Difference {
  field: string;
  mirror: unknown;
  handwritten: unknown;
  // For lists compared as lists or sets: what only one side has.
  onlyMirror?: unknown[];
  onlyHandwritten?: unknown[];
}

export interface MirrorFinding {
  vendor: string;
  mirror: { file: string; line: number; step: string; key: string; label: string };
  handwritten?: { file: string; line: number; label: string; matchedBy: 'key' | 'label' | 'name' };
  // The nearest hand-written label when nothing matched.
  nearest?: string;
  differences: Difference[];
}

export interface MirrorReport {
  vendor: string;
  handwrittenFile: string;
  mirrors: number;
  disagreeing: number;
  unmatched: number;
  findings: MirrorFinding[];
  // Problems that do not stop the comparison (a mirror device the profile does not have).
  warnings?: string[];
}

// The fields compared, in the order they are reported.
export const COMPARED = [
  'device',
  'gpus',
  'num_nodes',
  'dind',
  'no_plugin',
  'agent_tags',
  'optional',
  'timeout_in_minutes',
  'parallelism',
  'working_dir',
  'env',
  'source_file_dependencies',
  'commands',
] as const;

type Canon = Record<(typeof COMPARED)[number], unknown>;

const has = (o: Record<string, unknown>, k: string) => Object.prototype.hasOwnProperty.call(o, k) && o[k] !== undefined && o[k] !== null;
const dir = (d: unknown) => (typeof d === 'string' ? d.replace(/(.)\/+$/, '$1') : d);
const num = (v: unknown, dflt: number) => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : dflt);

function timeout(v: unknown, m: MirrorDef): number {
  return Math.min(num(v, m.timeout.default), m.timeout.max);
}

// What the generator emits for mirror `m` of `step`, in the comparison's terms (build.ts emitMirror).
export function mirroredDefinition(step: AreaStep, m: Record<string, unknown>, mirror: MirrorDef, p: Profile): Canon {
  const custom = Array.isArray(m.commands) && m.commands.length ? (m.commands as string[]) : undefined;
  const noGpu = has(m, 'no_gpu') ? Boolean(m.no_gpu) : Boolean(step.no_gpu);
  const device = m.device;
  const deps = [...((m.source_file_dependencies as string[] | undefined) ?? [])];
  for (const d of step.source_file_dependencies ?? []) if (!deps.includes(d)) deps.push(d);
  const devGpus = typeof device === 'string' ? p.devices[device]?.gpus : undefined;
  return {
    device,
    gpus: noGpu ? 0 : (devGpus ?? num(m.num_devices ?? m.num_gpus ?? step.num_devices, 1)),
    num_nodes: num(has(m, 'num_nodes') ? m.num_nodes : step.num_nodes, 1),
    dind: has(m, 'dind') ? m.dind : true,
    no_plugin: Boolean(m.no_plugin),
    agent_tags: (m.agent_tags as Record<string, string> | undefined) ?? {},
    optional: has(m, 'optional') ? Boolean(m.optional) : Boolean(step.optional),
    timeout_in_minutes: timeout(m.timeout_in_minutes, mirror),
    parallelism: num(step.parallelism, 1),
    working_dir: dir(custom ? ((m.working_dir as string | undefined) ?? step.working_dir) : step.working_dir),
    env: { ...(step.env ?? {}), ...((m.env as Record<string, string> | undefined) ?? {}) },
    source_file_dependencies: deps,
    commands: custom ?? step.commands ?? [],
  };
}

// A hand-written step in the same terms (the vendor template's defaults: one GPU, dind, the vendor timeout).
export function handwrittenDefinition(h: HandStep, mirror: MirrorDef, def: HandwrittenDef): Canon {
  const f = h.fields;
  const name = (k: string) => def.fields?.[k] ?? k;
  const noGpu = Boolean(f[name('no_gpu')]);
  const cmds = f[name('commands')] ?? (f.command !== undefined ? [f.command] : []);
  return {
    device: f[name('device')],
    gpus: noGpu ? 0 : num(f[name('num_devices')], 1),
    num_nodes: num(f[name('num_nodes')], 1),
    dind: has(f, name('dind')) ? f[name('dind')] : (def.defaults?.dind ?? true),
    no_plugin: Boolean(f[name('no_plugin')]),
    agent_tags: (f[name('agent_tags')] as Record<string, string> | undefined) ?? {},
    optional: Boolean(f[name('optional')]),
    timeout_in_minutes: timeout(f[name('timeout_in_minutes')], mirror),
    parallelism: num(f[name('parallelism')], 1),
    working_dir: dir((f[name('working_dir')] as string | undefined) ?? def.defaults?.working_dir),
    env: (f[name('env')] as Record<string, string> | undefined) ?? {},
    source_file_dependencies: (f[name('source_file_dependencies')] as string[] | undefined) ?? [],
    commands: Array.isArray(cmds) ? cmds.map(String) : [String(cmds)],
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function differences(a: Canon, b: Canon): Difference[] {
  const out: Difference[] = [];
  for (const field of COMPARED) {
    const x = a[field];
    const y = b[field];
    if (field === 'source_file_dependencies') {
      // Selection does not depend on the order: compared as sets.
      const xs = x as string[];
      const ys = y as string[];
      const onlyMirror = xs.filter((d) => !ys.includes(d));
      const onlyHandwritten = ys.filter((d) => !xs.includes(d));
      if (onlyMirror.length || onlyHandwritten.length) out.push({ field, mirror: x, handwritten: y, onlyMirror, onlyHandwritten });
    } else if (field === 'env' || field === 'agent_tags') {
      const xo = x as Record<string, unknown>;
      const yo = y as Record<string, unknown>;
      const keys = [...new Set([...Object.keys(xo), ...Object.keys(yo)])].sort();
      if (keys.some((k) => !same(xo[k], yo[k])))
        out.push({
          field,
          mirror: xo,
          handwritten: yo,
          onlyMirror: keys.filter((k) => !same(xo[k], yo[k]) && k in xo).map((k) => `${k}=${String(xo[k])}`),
          onlyHandwritten: keys.filter((k) => !same(xo[k], yo[k]) && k in yo).map((k) => `${k}=${String(yo[k])}`),
        });
    } else if (field === 'commands') {
      if (!same(x, y)) {
        const xs = x as string[];
        const ys = y as string[];
        out.push({ field, mirror: x, handwritten: y, onlyMirror: xs.filter((c) => !ys.includes(c)), onlyHandwritten: ys.filter((c) => !xs.includes(c)) });
      }
    } else if (!same(x, y)) out.push({ field, mirror: x, handwritten: y });
  }
  return out;
}

// The test name of a label under the profile's name_pattern (the whole label without one).
function nameOf(label: string, pattern: RegExp | undefined): string {
  const m = pattern?.exec(label);
  return (m?.groups?.name ?? label).trim().toLowerCase();
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_v, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length]!;
}

// Pairs each mirror with the hand-written step it replaces and lists what differs. A mirror is
// matched, in this order, by key (a hand-written `key` equal to the mirror's namespaced key), by
// label (the hand-written label equal to the emitted one, or to it made into a key), then by test
// name (the profile's name_pattern on both labels; the mirror's own label, else its step's), a
// candidate on the same device first.
export function compareMirrors(steps: AreaStep[], hand: HandStep[], vendor: string, handwrittenFile: string, p: Profile): MirrorReport {
  const mirror = p.mirrors[vendor];
  if (!mirror) throw new InputError(`--vendor ${vendor}: the profile has no mirror of that name`, `mirrors: ${Object.keys(p.mirrors).join(', ') || 'none'}`);
  const def = mirror.handwritten ?? {};
  let pattern: RegExp | undefined;
  try {
    pattern = def.name_pattern ? new RegExp(def.name_pattern, 'u') : undefined;
  } catch (e) {
    throw new InputError(`profile: mirrors.${vendor}.handwritten.name_pattern: ${(e as Error).message}`);
  }
  const deviceField = def.fields?.device ?? 'device';
  const byKey = new Map<string, HandStep>();
  const byLabel = new Map<string, HandStep>();
  const byName = new Map<string, HandStep[]>();
  for (const h of hand) {
    if (typeof h.fields.key === 'string' && !byKey.has(h.fields.key)) byKey.set(h.fields.key, h);
    if (!byLabel.has(h.label)) byLabel.set(h.label, h);
    const slug = generateStepKey(h.label);
    if (!byLabel.has(slug)) byLabel.set(slug, h);
    const n = nameOf(h.label, pattern);
    byName.set(n, [...(byName.get(n) ?? []), h]);
  }
  const findings: MirrorFinding[] = [];
  let mirrors = 0;
  for (const step of steps) {
    const m = step.mirror?.[vendor];
    if (!m || Object.keys(m).length === 0) continue;
    mirrors++;
    const key = mirror.key_prefix + (step.key || generateStepKey(step.label));
    const device = typeof m.device === 'string' ? m.device : '';
    const label = typeof m.label === 'string' && m.label ? m.label : mirror.label.replaceAll('{{label}}', step.label).replaceAll('{{device}}', device);
    const where = { file: step.file, line: step.mirror_line || step.line, step: step.label, key, label };
    let matchedBy: 'key' | 'label' | 'name' | undefined;
    let h = byKey.get(key);
    if (h) matchedBy = 'key';
    else if ((h = byLabel.get(label) ?? byLabel.get(generateStepKey(label)))) matchedBy = 'label';
    else {
      const candidates = byName.get(nameOf(typeof m.label === 'string' && m.label ? m.label : step.label, pattern)) ?? [];
      h = candidates.find((c) => c.fields[deviceField] === device) ?? candidates[0];
      if (h) matchedBy = 'name';
    }
    if (!h) {
      const want = nameOf(label, pattern);
      let nearest: string | undefined;
      let best = Infinity;
      for (const c of hand) {
        const other = nameOf(c.label, pattern);
        // A name that contains the other ('samplers test', 'samplers') is as near as a typo.
        const d = want.includes(other) || other.includes(want) ? 1 : levenshtein(want, other);
        if (d < best) [best, nearest] = [d, c.label];
      }
      findings.push({ vendor, mirror: where, nearest: nearest !== undefined && best <= Math.max(3, want.length / 3) ? nearest : undefined, differences: [] });
      continue;
    }
    const mine = mirroredDefinition(step, m, mirror, p);
    const theirs = handwrittenDefinition(h, mirror, def);
    // The generator adds the test-area file itself to the dependencies: not a difference unless the
    // hand-written step lists it.
    const hd = theirs.source_file_dependencies as string[];
    if (!hd.includes(step.file)) mine.source_file_dependencies = (mine.source_file_dependencies as string[]).filter((d) => d !== step.file);
    const diffs = differences(mine, theirs);
    if (diffs.length)
      findings.push({ vendor, mirror: where, handwritten: { file: h.file, line: h.line, label: h.label, matchedBy: matchedBy! }, differences: diffs });
  }
  return {
    vendor,
    handwrittenFile,
    mirrors,
    disagreeing: findings.filter((f) => f.handwritten).length,
    unmatched: findings.filter((f) => !f.handwritten).length,
    findings,
  };
}

// The hand-written steps of a file, with their lines: a mapping with a step list (def.steps, default
// `steps`) or a bare list; entries without a string label are skipped (they are not steps to replace).
export function readHandwritten(abs: string, shown: string, def: HandwrittenDef): HandStep[] {
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch {
    throw new InputError(`${shown}: cannot read the hand-written steps`, 'give the file with --against, or set handwritten.file in the profile');
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, version: '1.1', uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new InputError(`${shown}:${pos?.line ?? 1}:${pos?.col ?? 1}: YAML error: ${e.message.split('\n')[0]}`);
  }
  const listKey = def.steps ?? 'steps';
  const seq = isSeq(doc.contents) ? doc.contents : isMap(doc.contents) ? doc.get(listKey, true) : undefined;
  if (!isSeq(seq)) throw new InputError(`${shown}:1:1: no step list: expected a list, or a mapping with \`${listKey}:\` holding one`);
  const lineOf = (n: YamlNode | null | undefined) => (n?.range ? lc.linePos(n.range[0]).line : 1);
  const out: HandStep[] = [];
  for (const node of seq.items as YamlNode[]) {
    const v = (node as { toJS?: (d: unknown, o?: unknown) => unknown }).toJS?.(doc, { maxAliasCount: 10_000 });
    if (!v || typeof v !== 'object' || Array.isArray(v)) continue;
    const fields = v as Record<string, unknown>;
    if (typeof fields.label !== 'string') continue;
    out.push({ label: fields.label, fields, file: shown, line: lineOf(node) });
  }
  return out;
}

// A mirror needs a device to be compared. One the profile does not have (a device of a newer
// generator) is compared as written, with a warning: `generate` would refuse it.
function checkMirrorDevices(steps: AreaStep[], p: Profile, vendor: string): string[] {
  const mirror = p.mirrors[vendor]!;
  const warnings: string[] = [];
  for (const s of steps) {
    const m = s.mirror?.[vendor];
    if (!m || Object.keys(m).length === 0) continue;
    const where = `${s.file}:${s.mirror_line || s.line}: step '${s.label}'`;
    if (typeof m.device !== 'string' || !m.device)
      throw new InputError(`${where}: mirror.${vendor}.device is required (one of the profile's ${vendor} devices)`);
    if (p.devices[m.device]?.vendor !== mirror.vendor)
      warnings.push(`${where}: mirror.${vendor}.device '${m.device}' is not one of the profile's ${vendor} devices (compared as written; generate refuses it)`);
  }
  return warnings;
}

export interface LintMirrorsRequest {
  config: string;
  profile: string;
  // The hand-written steps (default: the profile's mirrors.<vendor>.handwritten.file).
  against?: string;
  // The profile mirror to check (default: every mirror with hand-written steps, the only one when one).
  vendor?: string;
  fileOrder?: 'directory' | 'sorted';
}

export async function lintMirrors(req: LintMirrorsRequest, cwd: string): Promise<MirrorReport> {
  const [{ loadProfile }, { readConfig, readTestAreas }] = await Promise.all([import('./generate/run.js'), import('./generate/areas.js')]);
  const p = await loadProfile(req.profile, cwd);
  const names = Object.keys(p.mirrors);
  const vendor = req.vendor ?? (names.length === 1 ? names[0] : names.find((n) => p.mirrors[n]!.handwritten));
  if (!vendor) throw new InputError('the profile defines no mirror to check', 'add a mirrors section to the profile (see docs/generate.md)');
  if (!p.mirrors[vendor]) throw new InputError(`--vendor ${vendor}: the profile has no mirror of that name`, `mirrors: ${names.join(', ')}`);
  const def = p.mirrors[vendor]!.handwritten ?? {};
  const file = req.against ?? def.file;
  if (!file)
    throw new InputError(
      `no hand-written ${vendor} steps to compare with`,
      `give the file with --against, or set mirrors.${vendor}.handwritten.file in the profile`,
    );
  const cfg = readConfig(req.config, cwd, p);
  const { steps } = readTestAreas(cfg, cwd, p, req.fileOrder ?? p.test_areas.file_order, true);
  // Only what the mirrors need is checked: a test area `generate` would refuse for another reason
  // (a device of a newer generator, a dangling depends_on) can still have its mirrors compared.
  const warnings = checkMirrorDevices(steps, p, vendor);
  const abs = resolve(cwd, file);
  const shown = relative(cwd, abs) || file;
  return { ...compareMirrors(steps, readHandwritten(abs, shown, def), vendor, shown, p), warnings };
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

// The report as text: one block per disagreeing mirror (both places and a readable diff), the
// mirrors without a hand-written step, then the counts.
export function formatMirrorReport(r: MirrorReport): string {
  const out: string[] = [];
  for (const f of r.findings) {
    const m = f.mirror;
    if (!f.handwritten) {
      out.push(
        `${m.file}:${m.line}: mirror.${f.vendor} of '${m.step}' (${m.label}): no hand-written step in ${r.handwrittenFile}${f.nearest ? ` (nearest: '${f.nearest}')` : ''}\n`,
      );
      continue;
    }
    const h = f.handwritten;
    out.push(`${m.file}:${m.line}: mirror.${f.vendor} of '${m.step}' differs from ${h.file}:${h.line}: '${h.label}' (matched by ${h.matchedBy})\n`);
    for (const d of f.differences) {
      if (d.onlyMirror || d.onlyHandwritten) {
        out.push(`  ${d.field}:\n`);
        // A multi-line command keeps its lines under its marker.
        const item = (mark: string, x: unknown) =>
          `    ${mark} ${show(x)
            .replace(/\n(?!$)/g, '\n      ')
            .replace(/\n$/, '')}\n`;
        for (const x of d.onlyHandwritten ?? []) out.push(item('-', x));
        for (const x of d.onlyMirror ?? []) out.push(item('+', x));
        if (d.field === 'commands' && !d.onlyMirror?.length && !d.onlyHandwritten?.length) out.push('    (the same commands in another order)\n');
      } else out.push(`  ${d.field}: ${show(d.handwritten)} -> ${show(d.mirror)}\n`);
    }
  }
  out.push(
    `${r.disagreeing} of ${r.mirrors} ${r.vendor} mirror${r.mirrors === 1 ? '' : 's'} differ from the hand-written steps of ${r.handwrittenFile}` +
      `${r.unmatched ? `; ${r.unmatched} without one` : ''} (- hand-written, + mirror)\n`,
  );
  return out.join('');
}
