// The pure core of `bkci pipeline generate`: test-area steps + facts + a profile -> the pipeline,
// in the order and shape vLLM's generator (ci-infra buildkite/pipeline_generator) emits it.
import { InputError } from '../../util/errors.js';
import type { AreaStep, GenConfig } from './areas.js';
import { comparePy, fill, fillDeep, matches, type CondFacts, type MirrorDef, type Profile, type TemplateValue } from './profile.js';

export interface Facts {
  env: Readonly<Record<string, string | undefined>>;
  branch?: string;
  commit?: string;
  pullRequest?: string;
  changed: string[];
  labels: string[];
  runAll: boolean;
  runAllReason?: string;
  nightly: string;
  torchNightly: string;
  onlyStepKeys?: Set<string>;
  // $NAME -> value, in replacement order (computed at the edge: it may probe registries).
  variables: [string, string][];
  otelBundle?: string;
  // What unselected steps become: block (a block + command pair each, as vLLM's generator emits),
  // group-block (one block per group gating its held steps) or skip (emitted with skip: and why).
  unselected?: 'block' | 'group-block' | 'skip';
}

export type Json = Record<string, unknown>;

export interface Decision {
  key: string;
  label: string;
  group: string;
  run: boolean;
  reason: string;
}

export interface Generated {
  pipeline: { steps: Json[] };
  decisions: Decision[];
}

const PY_WORD = /[\p{L}\p{N}_]/u;

// re.sub(re.escape(name) + r"\b", value, command): a whole-word replacement with Python's Unicode \b.
export function replaceVariable(command: string, name: string, value: string): string {
  if (!name) return command;
  const endsWord = PY_WORD.test(name[name.length - 1]!);
  let out = '';
  let i = 0;
  for (;;) {
    const j = command.indexOf(name, i);
    if (j < 0) break;
    const after = command.slice(j + name.length);
    const nextChar = after.length ? String.fromCodePoint(after.codePointAt(0)!) : '';
    const nextIsWord = nextChar !== '' && PY_WORD.test(nextChar);
    const boundary = endsWord ? !nextIsWord : nextIsWord;
    if (boundary) {
      out += command.slice(i, j) + value;
      i = j + name.length;
    } else {
      out += command.slice(i, j + 1);
      i = j + 1;
    }
  }
  return out + command.slice(i);
}

// A whole word renamed (both ends on a word boundary): visible-device variables for a mirror.
export function renameWord(text: string, from: string, to: string): string {
  if (!from) return text;
  const esc = from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`(?<![\\p{L}\\p{N}_])${esc}(?![\\p{L}\\p{N}_])`, 'gu'), () => to);
}

export function generateStepKey(label: string): string {
  return label
    .replaceAll(' ', '-')
    .toLowerCase()
    .replaceAll('(', '')
    .replaceAll(')', '')
    .replaceAll('%', '')
    .replaceAll(',', '-')
    .replaceAll('+', '-')
    .replaceAll(':', '-')
    .replaceAll('.', '-')
    .replaceAll('/', '-');
}

function matchesDependency(dep: string, file: string): boolean {
  const n = dep.replace(/\/+$/, '');
  if (!n) return false;
  return file === n || file.startsWith(n + '/');
}

// source_file_dependencies: path prefixes; '!prefix' excludes a changed file.
export function dependenciesMatch(deps: string[] | undefined, changed: string[]): string | undefined {
  if (!deps || deps.length === 0) return undefined;
  const inc = deps.filter((d) => !d.startsWith('!'));
  const exc = deps.filter((d) => d.startsWith('!')).map((d) => d.slice(1));
  return changed.find((f) => inc.some((d) => matchesDependency(d, f)) && !exc.some((d) => matchesDependency(d, f)));
}

const has = (o: Record<string, unknown>, k: string) => Object.prototype.hasOwnProperty.call(o, k);
const get = <T>(o: Record<string, unknown>, k: string, dflt: T): T => (has(o, k) ? (o[k] as T) : dflt);

interface Held {
  blockKey: string;
  blockDeps: string[];
  reason: string;
}

// Buildkite refuses a skip reason over 70 characters.
const MAX_SKIP_REASON = 70;

export class Generator {
  private readonly held = new WeakMap<Json, Held>();
  private readonly perStepBlocks = new WeakSet<Json>();
  private readonly p: Profile;
  private readonly amdVendor?: MirrorDef;
  constructor(
    private readonly cfg: GenConfig,
    profile: Profile,
    private readonly f: Facts,
  ) {
    this.p = profile;
  }

  private env(role: string): string | undefined {
    const name = this.p.env[role];
    return name ? this.f.env[name] : undefined;
  }

  private deviceDef(device: string | undefined) {
    return device === undefined ? undefined : this.p.devices[device];
  }

  private mirrorFor(vendor: string | undefined): MirrorDef | undefined {
    if (!vendor) return undefined;
    return Object.values(this.p.mirrors).find((m) => m.vendor === vendor);
  }

  private isMain(): boolean {
    return this.f.branch === this.p.config.main_branch;
  }

  private condFacts(step: Partial<AreaStep>): CondFacts {
    return {
      label: step.label,
      device: step.device,
      vendor: this.deviceDef(step.device)?.vendor,
      num_devices: step.num_devices,
      branch: this.f.branch,
      multi_gpu: Boolean((step.num_nodes && step.num_nodes >= 2) || (step.num_devices && step.num_devices >= 2)),
      env: this.f.env,
    };
  }

  otelEnabled(): boolean {
    const o = this.p.otel;
    if (!o) return false;
    const treatment = o.treatment_branch_env ? (this.f.env[o.treatment_branch_env] ?? '') : '';
    const trusted =
      (this.f.branch !== undefined && o.trusted_branches.includes(this.f.branch)) ||
      Boolean(treatment && treatment === this.f.branch && o.treatment_source && this.f.env[o.treatment_source.env] === o.treatment_source.value);
    return this.cfg.github_repo_name === o.repo && trusted && this.f.pullRequest === o.pull_request;
  }

  // Tracing as the generator does it needs the helper bundle; without it tracing is left out.
  private tracing(): boolean {
    return this.otelEnabled() && this.f.otelBundle !== undefined;
  }

  image(suffix = ''): string {
    const repoKey = this.isMain() ? this.p.image.repository.main : this.p.image.repository.other;
    let img = fill(this.p.image.template, (n) => (n === 'registries' ? this.cfg.registries : n === 'repository' ? this.cfg.repositories[repoKey] : undefined));
    if (this.f.torchNightly === '1' && this.p.image.torch_nightly_suffix) img += this.p.image.torch_nightly_suffix;
    return img + suffix;
  }

  queueFor(step: AreaStep): string {
    const facts = this.condFacts(step);
    for (const r of this.p.queues)
      if (matches(r.when, facts))
        return fill(r.queue, (n) => (n === 'device_queue' ? this.deviceDef(step.device)?.queue : n === 'device' ? step.device : undefined));
    throw new InputError(`profile: no queue rule matches step '${step.label}'`, 'end queues with a rule without when');
  }

  private agents(step: AreaStep): Record<string, string> {
    const a: Record<string, string> = { queue: this.queueFor(step) };
    if (this.deviceDef(step.device)?.agent_tags && step.agent_tags && Object.keys(step.agent_tags).length)
      for (const [k, v] of Object.entries(step.agent_tags)) if (k !== 'queue') a[k] = v;
    return a;
  }

  private plugin(step: AreaStep): Json {
    const facts = this.condFacts(step);
    const rule = this.p.plugin_rules.find((r) => matches(r.when, facts));
    if (!rule) throw new InputError(`profile: no plugin rule matches step '${step.label}'`);
    let img = this.image(rule.image_suffix ?? '');
    for (const [from, to] of Object.entries(rule.image_replace ?? {})) img = img.replaceAll(from, to);
    const body = fillDeep(this.p.plugins[rule.plugin], (n): TemplateValue => (n === 'image' ? img : n === 'gpus' ? step.num_devices || 1 : undefined)) as Json;
    const ma = this.p.mount_agent;
    if (rule.mount_agent && ma && (ma.labels.includes(step.label) || step.mount_buildkite_agent || this.tracing())) {
      const inner = Object.values(body)[0] as Json;
      inner[ma.field] = true;
    }
    return body;
  }

  private skipsPlugin(step: AreaStep): boolean {
    return Boolean(step.no_plugin) || this.p.plugin_skip_label_prefixes.some((p) => step.label.startsWith(p)) || Boolean(step.num_nodes && step.num_nodes >= 2);
  }

  private setupCommands(step: AreaStep, profileName: string): string[] {
    if (this.p.plugin_skip_label_prefixes.some((p) => step.label.startsWith(p)) || step.no_plugin) return [];
    const entries = this.p.setup[profileName] ?? [];
    const facts = this.condFacts(step);
    const out: string[] = [];
    for (const e of entries) {
      if (typeof e === 'string') out.push(e);
      else if (matches(e.when, facts)) out.push(e.command);
    }
    return out;
  }

  private pyPreview(cmd: string): string {
    const pv = this.p.commands.preview;
    let s = Array.from(cmd).slice(0, pv.length).join('');
    for (const ch of pv.strip) s = s.replaceAll(ch, '');
    return s;
  }

  // _prepare_commands: setup lines, echo + command (traced or wrapped), quote rewrite, variables, cd.
  prepareCommands(step: AreaStep, setupProfile: string, vendorTranslate?: Record<string, string>): string[] {
    const commands = this.setupCommands(step, setupProfile);
    const trace = this.tracing() && setupProfile === 'nvidia';
    if (trace) commands.push(fill(this.p.otel!.setup, (n) => (n === 'bundle' ? this.f.otelBundle : undefined)));
    const cof = this.env('continue_on_failure') === '1';
    const c = this.p.commands.continue_on_failure;
    if (cof) commands.push(c.start);
    const list = step.commands ?? [];
    list.forEach((cmd, i) => {
      const preview = this.pyPreview(cmd);
      commands.push(fill(this.p.commands.echo, (n) => (n === 'i' ? i + 1 : n === 'n' ? list.length : n === 'preview' ? preview : undefined)));
      let prepared = cmd;
      if (trace)
        prepared = fill(this.p.otel!.wrap, (n) =>
          n === 'i' ? i + 1 : n === 'preview_base64' ? Buffer.from(preview, 'utf8').toString('base64') : n === 'command' ? cmd : undefined,
        );
      commands.push(cof ? fill(c.wrap, (n) => (n === 'command' ? prepared : undefined)) : prepared);
    });
    if (cof) commands.push(c.end);
    const out = commands.map((command) => {
      let s = command;
      if (!step.num_nodes && this.p.quirks.single_to_double_quotes) s = s.replaceAll("'", '"');
      for (const [name, value] of this.f.variables) if (value) s = replaceVariable(s, name, value);
      for (const [from, to] of Object.entries(vendorTranslate ?? {})) s = renameWord(s, from, to);
      return s;
    });
    if (step.working_dir && !(this.p.plugin_skip_label_prefixes.some((p) => step.label.startsWith(p)) || (step.num_nodes && step.num_nodes >= 2)))
      out.unshift(`cd ${step.working_dir}`);
    return out;
  }

  private timeout(minutes: number | undefined): number | undefined {
    return this.env('skip_timeout') === '1' ? undefined : minutes;
  }

  private priority(): number {
    const h = this.p.priority.high;
    return h && this.env('priority') === h.env_value ? h.priority : this.p.priority.default;
  }

  // _step_should_run, with the reason (for --explain).
  shouldRun(step: AreaStep, keyForRules: string | undefined): [boolean, string] {
    if (this.env('noauto') === '1') return [false, `${this.p.env.noauto}=1`];
    if (this.f.onlyStepKeys)
      return keyForRules !== undefined && this.f.onlyStepKeys.has(keyForRules) ? [true, 'listed in step keys'] : [false, 'not in step keys'];
    const sel = this.p.selection;
    if (keyForRules && (sel.always_run_key_prefixes.some((p) => keyForRules.startsWith(p)) || sel.always_run_keys.includes(keyForRules)))
      return [true, 'always runs (key)'];
    if (this.f.nightly === '1') return [true, 'nightly'];
    if (step.optional) return [false, 'optional'];
    const vendor = this.mirrorFor(this.deviceDef(step.device)?.vendor);
    if (vendor && !step.dind) {
      const hit = dependenciesMatch(vendor.native_runs_when_changed, this.f.changed);
      if (hit) return [true, `native ${vendor.vendor} runtime changed: ${hit}`];
    }
    if (this.f.runAll) return [true, this.f.runAllReason ?? 'run all'];
    const hit = dependenciesMatch(step.source_file_dependencies, this.f.changed);
    if (hit) return [true, `changed: ${hit}`];
    return [false, step.source_file_dependencies?.length ? 'no changed file matches source_file_dependencies' : 'no source_file_dependencies'];
  }

  private retryWith(retry: Record<string, unknown> | undefined, cond: Record<string, unknown>, label: string): Record<string, unknown> {
    const policy = structuredClone(retry ?? {});
    const automatic = policy.automatic;
    if (automatic === true) return policy;
    const [field, value] = Object.entries(cond).find(([k]) => k !== 'limit') ?? ['', undefined];
    const same = (c: unknown) => typeof c === 'object' && c !== null && !Array.isArray(c) && (c as Record<string, unknown>)[field] === value;
    let conds: unknown[];
    if (automatic === undefined || automatic === null || automatic === false) conds = [];
    else if (typeof automatic === 'object' && !Array.isArray(automatic)) {
      if (same(automatic)) return policy;
      conds = [automatic];
    } else if (Array.isArray(automatic)) {
      if (automatic.some(same)) return policy;
      conds = automatic;
    } else throw new InputError(`step '${label}': retry.automatic must be true/false, a mapping or a list`);
    policy.automatic = [{ ...cond }, ...conds];
    return policy;
  }

  private vendorStep(
    mirror: MirrorDef,
    o: {
      label: string;
      key: string;
      device: string;
      numDevices?: number;
      commands: string;
      dependsOn?: string[];
      extraEnv?: Record<string, string>;
      dind: unknown;
      noPlugin: boolean;
      noGpu: boolean;
      numNodes?: number;
      softFail: unknown;
      parallelism?: number;
      concurrency?: number;
      concurrencyGroup?: string;
      timeout?: number;
      agentTags?: Record<string, string>;
      displayLabel?: string;
      where: string;
    },
  ): Json {
    const dev = this.deviceDef(o.device);
    if (!dev || dev.vendor !== mirror.vendor)
      throw new InputError(
        `${o.where}: invalid ${mirror.vendor} device '${o.device}'`,
        `valid: ${Object.entries(this.p.devices)
          .filter(([, d]) => d.vendor === mirror.vendor)
          .map(([n]) => n)
          .join(', ')}`,
      );
    if (typeof o.dind !== 'boolean') throw new InputError(`${o.where}: dind must be true or false`);
    if (!o.dind && o.noPlugin) throw new InputError(`${o.where}: native ${mirror.vendor} jobs (dind: false) cannot use no_plugin`);
    if (!o.dind && o.numNodes && o.numNodes > 1) throw new InputError(`${o.where}: native ${mirror.vendor} jobs (dind: false) cannot be multi-node`);
    let gpus = 0;
    if (!o.noGpu) {
      if (o.numDevices !== undefined && o.numDevices !== null && o.numDevices !== dev.gpus)
        throw new InputError(`${o.where}: ${mirror.vendor} device ${o.device} provides ${dev.gpus} GPUs, but num_devices=${o.numDevices}`);
      gpus = dev.gpus ?? 1;
    }
    const ctx = (n: string): TemplateValue => (n === 'gpus' || n === 'gpus_str' ? String(gpus) : n === 'commands' ? o.commands : undefined);
    const agents: Record<string, string> = { queue: dev.queue ?? o.device };
    if (o.agentTags && Object.keys(o.agentTags).length) {
      if (o.dind) throw new InputError(`${o.where}: ${mirror.vendor} agent_tags are only supported for native jobs (dind: false)`);
      for (const [k, v] of Object.entries(o.agentTags)) {
        if (typeof v !== 'string' || !v.trim() || !k.trim()) throw new InputError(`${o.where}: agent_tags keys and values must be non-empty strings`);
        if (k !== 'queue') agents[k] = v;
      }
    }
    let env: Record<string, string> | undefined;
    let commands: string[];
    if (o.noPlugin) {
      env = o.extraEnv && Object.keys(o.extraEnv).length ? { ...o.extraEnv } : undefined;
      commands = [o.commands];
    } else {
      const e = mirror.env;
      env = { ...(o.extraEnv ?? {}), ...(fillDeep(e.all, ctx) as Record<string, string>) };
      if (!o.dind) {
        for (const k of e.native_remove) delete env[k];
        for (const [k, v] of Object.entries(e.native_defaults)) if (!has(env, k)) env[k] = v;
        Object.assign(env, fillDeep(e.native, ctx));
      } else Object.assign(env, fillDeep(e.dind, ctx));
      commands = [mirror.command];
    }
    const deps: string[] = [];
    for (let d of o.dependsOn ?? []) {
      d = mirror.rename_depends_on[d] ?? d;
      if (!deps.includes(d)) deps.push(d);
    }
    if (!deps.includes(mirror.build_key)) deps.unshift(mirror.build_key);
    const step: Json = {
      label: o.displayLabel || fill(mirror.label, (n) => (n === 'label' ? o.label : n === 'device' ? o.device : undefined)),
      key: o.key,
      agents,
      commands,
      depends_on: deps,
      soft_fail: o.softFail || false,
      retry: structuredClone(mirror.retry),
      plugins: o.dind ? undefined : [fillDeep(mirror.native_plugin, ctx)],
      env,
      artifact_paths: o.noPlugin ? undefined : [...mirror.artifact_paths],
      parallelism: o.parallelism,
      concurrency: o.concurrency,
      concurrency_group: o.concurrencyGroup,
      timeout_in_minutes: this.timeout(Math.min(o.timeout ?? mirror.timeout.default, mirror.timeout.max)),
      priority: mirror.priority,
    };
    return step;
  }

  generate(steps: AreaStep[]): Generated {
    const decisions: Decision[] = [];
    // group_steps: groups in first-seen order, steps sorted by label (stable, code point order).
    const groups = new Map<string, AreaStep[]>();
    for (const s of steps) {
      const g = s.group || this.p.test_areas.ungrouped;
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g)!.push(s);
    }
    for (const list of groups.values()) list.sort((a, b) => comparePy(a.label, b.label));

    const out: { group: string; steps: Json[] }[] = [];
    const vendorGroups = new Map<string, Json[]>();
    const pushVendor = (m: MirrorDef, ...s: Json[]) => {
      if (!vendorGroups.has(m.group)) vendorGroups.set(m.group, []);
      vendorGroups.get(m.group)!.push(...s);
    };

    for (const [group, list] of groups) {
      const emitted: Json[] = [];
      for (const step of list) {
        const key = step.key || generateStepKey(step.label);
        const where = `${step.file}:${step.line}: step '${step.label}'`;
        const nativeVendor = this.mirrorFor(this.deviceDef(step.device)?.vendor);
        if (nativeVendor) {
          const cmds = [fill(nativeVendor.native_group_export, (n) => (n === 'key' ? key : undefined)), ...this.prepareCommands(step, nativeVendor.vendor)];
          const vs = this.vendorStep(nativeVendor, {
            label: step.label,
            key,
            device: step.device!,
            numDevices: step.num_devices,
            commands: cmds.join(' && '),
            dependsOn: step.depends_on,
            extraEnv: step.env,
            dind: step.dind,
            noPlugin: Boolean(step.no_plugin),
            noGpu: Boolean(step.no_gpu),
            numNodes: step.num_nodes,
            softFail: step.soft_fail,
            parallelism: step.parallelism,
            concurrency: step.concurrency,
            concurrencyGroup: step.concurrency_group,
            timeout: step.timeout_in_minutes,
            agentTags: step.agent_tags,
            where,
          });
          const [run, reason] = this.shouldRun(step, step.key || undefined);
          decisions.push({ key, label: String(vs.label), group: nativeVendor.group, run, reason });
          if (!run) {
            const blockKey = nativeVendor.block_key_prefix + key;
            const deps = vs.depends_on as string[];
            const block = { block: `Run ${String(vs.label)}`, depends_on: [...deps], key: blockKey };
            if (!deps.includes(blockKey)) vs.depends_on = [...deps, blockKey];
            this.hold(vs, block, reason);
            pushVendor(nativeVendor, block);
          }
          pushVendor(nativeVendor, vs);
          continue;
        }

        const dev = this.deviceDef(step.device);
        const cmd: Json = {
          label: step.label,
          key,
          agents: this.agents(step),
          commands: this.prepareCommands(step, 'nvidia'),
          depends_on: step.depends_on ? [...step.depends_on] : undefined,
          soft_fail: step.soft_fail,
          priority: this.priority(),
          concurrency: step.concurrency,
          concurrency_group: step.concurrency_group,
        };
        if (step.env && Object.keys(step.env).length) cmd.env = { ...step.env };
        let retry = step.retry && Object.keys(step.retry).length ? step.retry : undefined;
        if (this.p.retry.prepend_unless_present) retry = this.retryWith(retry, this.p.retry.prepend_unless_present, step.label);
        if (retry) cmd.retry = retry;
        if (step.parallelism) cmd.parallelism = step.parallelism;
        if (dev?.retry_prepend) cmd.retry = this.retryWith(cmd.retry as Record<string, unknown> | undefined, dev.retry_prepend, step.label);
        const override = step.key ? this.p.step_overrides?.find((o) => o.key === step.key) : undefined;
        if (override) {
          const env = { ...((cmd.env as Record<string, string> | undefined) ?? {}) };
          for (const [name, dflt] of Object.entries(override.env_from_environment ?? {})) env[name] = this.f.env[name] ?? dflt;
          cmd.env = env;
          const t = override.timeout?.find((r) => matches(r.when, this.condFacts(step)));
          if (t) cmd.timeout_in_minutes = this.timeout(t.minutes);
        } else if (dev?.timeout) cmd.timeout_in_minutes = this.timeout(Math.min(step.timeout_in_minutes ?? dev.timeout.default, dev.timeout.max));
        else if (step.timeout_in_minutes) cmd.timeout_in_minutes = this.timeout(step.timeout_in_minutes);

        const [run, reason] = this.shouldRun(step, step.key || undefined);
        decisions.push({ key, label: step.label, group, run, reason });
        if (!run) {
          const blockKey = `block-${key}`;
          const block = { block: `Run ${step.label}`, depends_on: [], key: blockKey };
          emitted.push(block);
          cmd.depends_on = [blockKey, ...((cmd.depends_on as string[] | undefined) ?? []).filter((d) => d !== blockKey)];
          this.hold(cmd, block, reason);
        }
        if (!this.skipsPlugin(step)) cmd.plugins = [this.plugin(step)];
        emitted.push(cmd);

        if (step.mirror && this.f.onlyStepKeys === undefined) {
          for (const [vendorName, m] of Object.entries(step.mirror)) {
            const mirror = this.p.mirrors[vendorName];
            if (!mirror || !m || Object.keys(m).length === 0) continue;
            this.emitMirror(step, key, m, mirror, where, pushVendor, decisions);
          }
        }
      }
      if (emitted.length) out.push({ group, steps: emitted });
    }
    for (const [group, s] of vendorGroups) if (s.length) out.push({ group, steps: s });
    // sorted(..., key=lambda x: x.group): stable, code point order.
    const sorted = out.map((g, i) => ({ g, i })).sort((a, b) => comparePy(a.g.group, b.g.group) || a.i - b.i);
    const groupsOut = sorted.map((x) => x.g);

    if (this.f.unselected && this.f.unselected !== 'block') for (const g of groupsOut) g.steps = this.unselected(g.group, g.steps, this.f.unselected);

    const pc = this.p.precommit;
    if (pc && this.f.pullRequest && this.f.pullRequest !== 'false') {
      for (const g of groupsOut)
        for (const s of g.steps) {
          if (!('label' in s) || !Array.isArray(s.depends_on) || s.depends_on.length === 0) continue;
          if (typeof s.key === 'string' && s.key.includes(pc.gate_dependency_contains)) continue;
          const deps = s.depends_on as string[];
          if (!deps.some((d) => d.includes(pc.gate_dependency_contains))) continue;
          if (!deps.includes(pc.key)) deps.push(pc.key);
        }
      const vars: Record<string, string> = { ...pc.program_vars, commit: this.f.commit ?? 'None', repo: this.cfg.github_repo_name };
      const program = fill(pc.program, (n) => vars[n]);
      groupsOut.unshift({
        group: pc.group,
        steps: [
          {
            label: pc.label,
            key: pc.key,
            agents: { queue: pc.queue },
            commands: [fill(pc.command, (n) => (n === 'program' ? program : undefined))],
            depends_on: [],
            soft_fail: false,
            priority: this.priority(),
          },
        ],
      });
    }
    return { pipeline: { steps: groupsOut.map((g) => ({ group: g.group, steps: g.steps.map(dropUndefined) })) }, decisions };
  }

  private hold(cmd: Json, block: Json, reason: string): void {
    this.perStepBlocks.add(block);
    this.held.set(cmd, { blockKey: String(block.key), blockDeps: [...((block.depends_on as string[] | undefined) ?? [])], reason });
  }

  // --unselected group-block|skip: the per-step block steps replaced.
  private unselected(group: string, steps: Json[], mode: 'group-block' | 'skip'): Json[] {
    const out: Json[] = [];
    const count = steps.filter((s) => this.held.has(s)).length;
    const key = `block-${('group-' + group).toLowerCase().replace(/[^a-z0-9_.-]/g, '-')}`.slice(0, 100);
    let emitted = false;
    for (const s of steps) {
      if (this.perStepBlocks.has(s)) continue;
      const h = this.held.get(s);
      if (!h) {
        out.push(s);
        continue;
      }
      const deps = (s.depends_on as string[] | undefined) ?? [];
      if (mode === 'skip') {
        s.depends_on = deps.filter((d) => d !== h.blockKey);
        const why = `not selected: ${h.reason}`;
        s.skip = why.length > MAX_SKIP_REASON ? `${why.slice(0, MAX_SKIP_REASON - 3)}...` : why;
      } else {
        if (!emitted) {
          out.push({ block: `Run the ${count} unselected step${count === 1 ? '' : 's'} of ${group}`, key, depends_on: h.blockDeps });
          emitted = true;
        }
        s.depends_on = deps.map((d) => (d === h.blockKey ? key : d));
      }
      out.push(s);
    }
    return out;
  }

  private emitMirror(
    step: AreaStep,
    key: string,
    m: Record<string, unknown>,
    mirror: MirrorDef,
    where: string,
    pushVendor: (m: MirrorDef, ...s: Json[]) => void,
    decisions: Decision[],
  ): void {
    const mwhere = `${where}: mirror.${mirror.vendor}`;
    if (typeof m.device !== 'string') throw new InputError(`${mwhere}: device is required (one of the profile's ${mirror.vendor} devices)`);
    const noPlugin = Boolean(get(m, 'no_plugin', false));
    const noGpu = Boolean(get(m, 'no_gpu', step.no_gpu || false));
    const numDevices = (m.num_devices ?? m.num_gpus ?? step.num_devices) as number | undefined;
    const custom = m.commands as string[] | undefined;
    if (custom !== undefined && custom !== null && (!Array.isArray(custom) || custom.some((c) => typeof c !== 'string')))
      throw new InputError(`${mwhere}: commands must be a list of strings`);
    const translate = mirror.visible_devices;
    const cmdStep: AreaStep =
      custom && custom.length
        ? { ...step, commands: custom, working_dir: get(m, 'working_dir', step.working_dir), no_plugin: noPlugin }
        : { ...step, no_plugin: noPlugin };
    const commands = this.prepareCommands(cmdStep, mirror.vendor, translate).join(' && ');
    const extraEnv: Record<string, string> = { ...(step.env ?? {}) };
    const menv = (m.env ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(menv)) {
      if (typeof v !== 'string') throw new InputError(`${mwhere}: env.${k} must be a string`);
      extraEnv[k] = v;
    }
    for (const [from, to] of Object.entries(translate ?? {}))
      if (has(extraEnv, from)) {
        extraEnv[to] = extraEnv[from]!;
        delete extraEnv[from];
      }
    const mkey = mirror.key_prefix + key;
    const vs = this.vendorStep(mirror, {
      label: step.label,
      key: mkey,
      device: m.device,
      numDevices,
      commands,
      dependsOn: (m.depends_on as string[] | undefined) ?? undefined,
      extraEnv,
      dind: get(m, 'dind', true),
      noPlugin,
      noGpu,
      numNodes: get(m, 'num_nodes', step.num_nodes),
      softFail: get(m, 'soft_fail', step.soft_fail || false),
      parallelism: step.parallelism,
      concurrency: get(m, 'concurrency', step.concurrency),
      concurrencyGroup: get(m, 'concurrency_group', step.concurrency_group),
      timeout: (m.timeout_in_minutes as number | undefined) ?? undefined,
      agentTags: (m.agent_tags as Record<string, string> | undefined) ?? undefined,
      displayLabel: (m.label as string | undefined) ?? undefined,
      where: mwhere,
    });
    // The mirror is selected by its own dependencies plus the parent's, its own optional flag.
    const deps = [...((m.source_file_dependencies as string[] | undefined) ?? [])];
    for (const d of step.source_file_dependencies ?? []) if (!deps.includes(d)) deps.push(d);
    const effective: AreaStep = {
      ...step,
      key: undefined,
      device: m.device,
      dind: get(m, 'dind', true) as boolean,
      optional: get(m, 'optional', step.optional) as boolean,
      source_file_dependencies: deps.length ? deps : undefined,
    };
    let [run, reason] = this.shouldRun(effective, undefined);
    if (!run && this.env('noauto') !== '1') {
      const hit = this.f.changed.find((f) => mirror.mirror_runs_when_changed.includes(f));
      if (hit) [run, reason] = [true, `changed: ${hit}`];
    }
    decisions.push({ key: mkey, label: String(vs.label), group: mirror.group, run, reason });
    if (!run) {
      const vdeps = vs.depends_on as string[];
      const blockKey = mirror.block_key_prefix + key;
      const blockLabel = m.label ? `Run ${String(vs.label)}` : fill(mirror.mirror_block_label, (n) => (n === 'label' ? step.label : undefined));
      const block = { block: blockLabel, key: blockKey, depends_on: [vdeps[0] ?? mirror.build_key] };
      pushVendor(mirror, block);
      if (!vdeps.includes(blockKey)) vs.depends_on = [...vdeps, blockKey];
      this.hold(vs, block, reason);
    }
    pushVendor(mirror, vs);
  }
}

function dropUndefined(o: Json): Json {
  const r: Json = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) r[k] = v;
  return r;
}

// Checks beyond the generator's: unknown devices, depends_on on keys that exist nowhere, duplicate keys.
export function checkSteps(steps: AreaStep[], profile: Profile): void {
  const seen = new Map<string, AreaStep>();
  for (const s of steps) {
    const key = s.key || generateStepKey(s.label);
    const prev = seen.get(key);
    if (prev)
      throw new InputError(
        `${s.file}:${s.line}: duplicate step key '${key}' (also ${prev.file}:${prev.line})`,
        s.key ? 'give one of them another key' : 'the key is made from the label: give one of them a key',
      );
    seen.set(key, s);
  }
  const known = new Set([...seen.keys(), ...(profile.external_keys ?? [])]);
  if (profile.precommit) known.add(profile.precommit.key);
  for (const s of steps) {
    if (s.device !== undefined && !profile.devices[s.device])
      throw new InputError(`${s.file}:${s.line}: step '${s.label}': unknown device '${s.device}'`, `devices: ${Object.keys(profile.devices).join(', ')}`);
    for (const d of s.depends_on ?? [])
      if (!known.has(d))
        throw new InputError(
          `${s.file}:${s.line}: step '${s.label}': depends_on '${d}', a key no step has`,
          "fix the key, or list it in the profile's external_keys",
        );
    for (const [vendor, m] of Object.entries(s.mirror ?? {})) {
      if (!profile.mirrors[vendor]) continue;
      const dev = (m as Record<string, unknown>).device;
      if (dev !== undefined && (typeof dev !== 'string' || profile.devices[dev]?.vendor !== profile.mirrors[vendor]!.vendor))
        throw new InputError(
          `${s.file}:${s.mirror_line || s.line}: step '${s.label}': mirror.${vendor}.device '${String(dev)}' is not one of the profile's ${vendor} devices`,
          `${vendor} devices: ${Object.entries(profile.devices)
            .filter(([, d]) => d.vendor === profile.mirrors[vendor]!.vendor)
            .map(([n]) => n)
            .join(', ')}`,
        );
    }
  }
}
