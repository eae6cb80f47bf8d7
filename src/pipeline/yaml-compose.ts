// Turns YAML text into values with bkci's own rules for the parts of YAML that hostile or unusual
// input reaches: anchors and aliases, merge keys `<<:`, mapping keys, nesting depth and escapes.
// npm `yaml` reads the syntax (its CST parser and composer); bkci walks the resulting nodes itself
// instead of npm `yaml`'s toJS, so that
// - an alias is a reference to the value already built for its anchor (never a copy), which makes
//   many aliases of one anchor linear, and alias expansion is bounded as the agent's go-yaml and
//   minijinja-cli's serde_yaml bound it (an alias bomb is a located error, found in linear time);
// - merge keys follow the reader being imitated: the Buildkite agent's (go-pipeline's ordered
//   package) for pipelines, serde_yaml's `apply_merge` for template data;
// - nesting deeper than a fixed limit is a located error before anything recursive runs;
// - every message is bkci's own, located (npm `yaml`'s texts never reach the user).
import { createRequire } from 'node:module';
import type { Document, LineCounter, Node, Pair } from 'yaml';

// npm `yaml` is loaded only when the fast parser gives up or a position is needed.
const require = createRequire(import.meta.url);
let yamlModule: typeof import('yaml') | undefined;
export function yamlLib(): typeof import('yaml') {
  return (yamlModule ??= require('yaml') as typeof import('yaml'));
}

export interface YamlIssue {
  line: number;
  col: number;
  message: string;
}

export type YamlMode = 'pipeline' | 'data';

export interface ComposeOptions {
  mode: YamlMode;
  // Collections nested deeper than this (counting what aliases bring in) are an error.
  maxDepth: number;
  // Data only: a repeated key is an error (serde_yaml's rule); otherwise the last value wins.
  uniqueKeys?: boolean;
}

export interface ComposedDoc {
  value: unknown;
  doc: Document;
}

export interface ComposeResult {
  // The documents that could be read (a document with an error is left out).
  docs: ComposedDoc[];
  // Where every document of the text starts, read or not (1-based).
  starts: { line: number; col: number }[];
  lineCounter: LineCounter;
  errors: YamlIssue[];
  warnings: YamlIssue[];
}

// The pipeline nesting limit: go-yaml refuses 10,000 levels; bkci stops at 1,000, which keeps every
// recursive step (npm `yaml`'s composer, validation) far from the stack's end. No real pipeline
// nests more than a few dozen levels.
export const PIPELINE_MAX_DEPTH = 1000;
// serde_yaml's (and serde_json's) recursion limit: minijinja-cli refuses DATA nested deeper.
export const DATA_MAX_DEPTH = 128;

function depthMessage(max: number): string {
  const why = max === DATA_MAX_DEPTH ? "minijinja-cli's data readers (serde_yaml, serde_json) stop there" : 'go-yaml stops at 10,000; bkci at 1,000';
  return `lists and mappings nested more than ${max} levels deep (${why})`;
}

class YamlError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

// go-yaml's excessive-aliasing rule (decode.go, allowedAliasRatio): once more than 100 values came
// from aliases and more than 1,000 were decoded, at most 99% of the values may come from aliases,
// falling to 10% between 400,000 and 4,000,000 decoded values.
function allowedAliasRatio(decodeCount: number): number {
  if (decodeCount <= 400_000) return 0.99;
  if (decodeCount >= 4_000_000) return 0.1;
  return 0.99 - (0.89 * (decodeCount - 400_000)) / 3_600_000;
}

const printable = (s: string) => s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

// bkci's words for npm `yaml`'s error codes; `at` is the text where the error is.
export function describeYamlError(code: string, libMessage: string, at: string): string {
  const ch = at[0] ?? '';
  const shown = ch === '' ? 'the end of the text' : `\`${printable(ch)}\``;
  switch (code) {
    case 'ALIAS_PROPS':
      return 'an alias (`*name`) cannot have an anchor or a tag';
    case 'BAD_ALIAS':
      return /empty/.test(libMessage)
        ? 'an anchor or alias needs a name after `&` or `*`'
        : 'an anchor or alias name cannot end in `:` (add a space before the `:`)';
    case 'BAD_DIRECTIVE':
      return 'a `%` directive bkci does not know (only %YAML and %TAG exist)';
    case 'BAD_DQ_ESCAPE':
      return 'an invalid escape in a double-quoted string (valid: \\\\ \\" \\n \\t \\xXX \\uXXXX \\UXXXXXXXX and the other YAML escapes); use single quotes for a literal backslash';
    case 'BAD_INDENT':
      return /sequence/.test(libMessage) ? 'the items of a list must start at the same column' : 'wrong indentation';
    case 'BAD_PROP_ORDER':
      return 'an anchor or tag must come after the `-`, `?` or `:` it belongs to';
    case 'BAD_SCALAR_START':
      return `an unquoted value cannot begin with ${shown}: quote the value`;
    case 'BLOCK_AS_IMPLICIT_KEY':
      return /compact/.test(libMessage)
        ? 'a mapping cannot start on the line of another key (`a: b: c`): put it on the next line, indented, or quote the value'
        : 'a list cannot be a key here';
    case 'BLOCK_IN_FLOW':
      return 'a block value cannot be inside `[...]` or `{...}`';
    case 'DUPLICATE_KEY':
      return 'a repeated key';
    case 'KEY_OVER_1024_CHARS':
      return 'a key on one line may be at most 1024 characters long';
    case 'MISSING_CHAR':
      if (/closing/.test(libMessage)) return 'a quoted string that is never closed: add the closing quote';
      if (/followed by map values/.test(libMessage)) return 'a key without `:` (or text that is neither `key: value` nor a list item)';
      if (/Missing , or :/.test(libMessage)) return 'missing `,` or `:` between the items of `[...]` or `{...}`';
      if (/Missing ,/.test(libMessage)) return 'missing `,` between the items of `[...]` or `{...}`';
      if (/space after :/.test(libMessage)) return 'missing space after `:`';
      if (/Comments/.test(libMessage)) return 'a `#` comment needs white space before it';
      if (/Tags and anchors/.test(libMessage)) return 'an anchor or tag needs white space after it';
      if (/Sequence item/.test(libMessage)) return 'a list item needs `- ` before it';
      if (/directives-end marker/.test(libMessage)) return 'a block collection cannot start on the `---` line';
      if (/directives-end/.test(libMessage)) return 'a `%` directive must be followed by a `---` line';
      return `something is missing before ${shown}`;
    case 'MULTILINE_IMPLICIT_KEY':
      return 'a key must fit on one line (is a `:` missing, or a quote not closed, on a line before?)';
    case 'MULTIPLE_ANCHORS':
      return 'a value can have only one anchor';
    case 'MULTIPLE_TAGS':
      return 'a value can have only one tag';
    case 'MULTIPLE_DOCS':
      return 'more than one document';
    case 'RESOURCE_EXHAUSTION':
      return 'the YAML is too deeply nested or too large';
    case 'TAB_AS_INDENT':
      return 'a tab in the indentation: YAML indents with spaces';
    case 'TAG_RESOLVE_FAILED':
      return 'an unknown tag';
    case 'BAD_COLLECTION_TYPE':
      return 'a tag that does not fit this list or mapping';
    case 'UNEXPECTED_TOKEN':
      if (/Block scalar header/.test(libMessage)) return 'unexpected text after `|` or `>` (only `-`, `+`, an indentation digit and a comment may follow)';
      return `unexpected ${shown} here`;
    default:
      return `cannot read the YAML at ${shown}`;
  }
}

// go-pipeline's canonicalMapKey: a scalar key as the agent names it. null is refused there.
function goFloatKey(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  const [mant, exp] = x.toExponential(6).split('e') as [string, string];
  const sign = exp.startsWith('-') ? '-' : '+';
  const digits = exp.replace(/^[-+]/, '').padStart(2, '0');
  return `${mant}e${sign}${digits}`;
}

const INT_SOURCE = /^[-+]?(?:[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$/;

// A scalar node's source text as written (for numbers: int or float).
function scalarSource(node: Node): string | undefined {
  const s = (node as { source?: unknown }).source;
  return typeof s === 'string' ? s : undefined;
}

interface Stats {
  // go-yaml's counters (pipelines).
  decodes: number;
  aliased: number;
  // serde_yaml's counters (data).
  jumps: number;
  jumpLimit: number;
}

// Per node, once built: its value, and what a full expansion of it would cost.
interface Built {
  value: unknown;
  size: number; // values in a full expansion (go-yaml's decode count)
  depth: number; // collection levels in a full expansion
  jumps: number; // alias expansions in a full expansion (serde_yaml's jump count)
}

type Convert = (v: unknown, node: Node) => unknown;

class Composer {
  private readonly Y = yamlLib();
  private readonly built = new Map<Node, Built>();
  private readonly building = new Set<Node>();
  private readonly anchors = new Map<string, Node>();
  readonly warnings: { offset: number; message: string }[] = [];

  constructor(
    private readonly opts: ComposeOptions,
    private readonly allAnchors: Set<string>,
    private readonly stats: Stats,
    private readonly scalar: Convert,
    private readonly makeMap: (entries: [unknown, unknown][]) => unknown,
  ) {}

  private fail(node: Node | null | undefined, message: string, fallback = 0): never {
    throw new YamlError(node?.range?.[0] ?? fallback, message);
  }

  // Builds `node` at nesting `level` (collections around it).
  build(node: Node | null | undefined, level: number, at = 0): Built {
    if (node === null || node === undefined) return { value: null, size: 1, depth: 0, jumps: 0 };
    const Y = this.Y;
    if (Y.isAlias(node)) return this.alias(node as AliasNode, level);
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor) this.anchors.set(anchor, node);
    let b: Built;
    if (Y.isScalar(node)) {
      b = { value: this.scalar(node.value, node), size: 1, depth: 0, jumps: 0 };
      this.stats.decodes++;
    } else if (Y.isMap(node)) {
      b = this.mapping(node.items as Pair<Node | null, Node | null>[], level, node);
    } else if (Y.isSeq(node)) {
      this.building.add(node);
      this.stats.decodes++;
      const out: unknown[] = [];
      let size = 1;
      let depth = 0;
      let jumps = 0;
      for (const item of node.items as unknown[]) {
        // `[a: b]`: a single-pair mapping inside a flow sequence.
        const c = Y.isPair(item)
          ? this.mapping([item as Pair<Node | null, Node | null>], level + 1, { range: (item as Pair<Node | null>).key?.range } as unknown as Node)
          : this.build(item as Node, level + 1);
        out.push(c.value);
        size += c.size;
        depth = Math.max(depth, c.depth);
        jumps += c.jumps;
      }
      this.building.delete(node);
      b = { value: out, size, depth: depth + 1, jumps };
    } else {
      this.fail(node, 'a YAML node bkci cannot read', at);
    }
    if (level + b.depth > this.opts.maxDepth) this.tooDeep(node);
    // Kept for what aliases and merges may look up: anchored nodes and mappings.
    if (anchor || !Y.isScalar(node)) this.built.set(node, b);
    return b;
  }

  private tooDeep(node: Node): never {
    this.fail(node, depthMessage(this.opts.maxDepth));
  }

  // An alias: the value built for its anchor, shared; its expansion is counted against the limits.
  private alias(node: AliasNode, level: number): Built {
    const name = node.source;
    const target = this.anchors.get(name);
    if (!target) {
      this.fail(
        node,
        this.allAnchors.has(name)
          ? `alias \`*${name}\` comes before its anchor \`&${name}\`: an alias can only refer to an anchor above it`
          : `alias \`*${name}\` refers to no anchor: define \`&${name}\` on a value above it`,
      );
    }
    if (this.building.has(target)) this.fail(node, `alias \`*${name}\` refers to a value that contains it (infinite recursion)`);
    const b = this.built.get(target);
    if (!b) this.fail(node, `alias \`*${name}\` refers to a value bkci could not read`);
    if (level + b.depth > this.opts.maxDepth) this.tooDeep(node);
    const s = this.stats;
    if (this.opts.mode === 'pipeline') {
      s.decodes += 1 + b.size;
      s.aliased += b.size;
      if (s.aliased > 100 && s.decodes > 1000 && s.aliased / s.decodes > allowedAliasRatio(s.decodes))
        this.fail(
          node,
          `excessive aliasing: \`*${name}\` brings the expanded document to ${s.decodes} values, ${Math.round((100 * s.aliased) / s.decodes)}% of them from aliases (go-yaml refuses more than ${Math.round(100 * allowedAliasRatio(s.decodes))}%)`,
        );
    } else {
      s.jumps += 1 + b.jumps;
      if (s.jumps > s.jumpLimit)
        this.fail(
          node,
          `excessive aliasing: \`*${name}\` brings the alias expansions to ${s.jumps}, more than 100 per YAML event (${s.jumpLimit}), where minijinja-cli's YAML reader stops`,
        );
    }
    return { value: b.value, size: b.size, depth: b.depth, jumps: 1 + b.jumps };
  }

  // The key of a pair as the reader being imitated names it, and the identity it is compared by.
  private key(k: Node | null, pairNode: Node, level: number): { key: unknown; id: string; built: Built } {
    const Y = this.Y;
    if (this.opts.mode === 'data') {
      const b = this.build(k, level, pairNode.range?.[0]);
      return { key: b.value, id: keyId(b.value), built: b };
    }
    let n: Node | null | undefined = k;
    while (n && Y.isAlias(n)) n = this.anchors.get(aliasName(n));
    if (k && Y.isAlias(k) && !n) this.alias(k as AliasNode, level); // fails: no anchor
    if (!n || (Y.isScalar(n) && n.value === null)) this.fail(k ?? pairNode, 'a null mapping key (`~`, `null` or nothing before `:`): the agent refuses it');
    if (!Y.isScalar(n)) this.fail(k, 'a list or mapping as a mapping key: the agent accepts only a string, number or boolean');
    const b = this.build(k, level, pairNode.range?.[0]);
    const v = n.value;
    let id: string;
    if (typeof v === 'boolean') id = String(v);
    else if (typeof v === 'number' || typeof v === 'bigint') {
      const src = scalarSource(n);
      id =
        typeof v === 'bigint' || (Number.isInteger(v) && n.type === 'PLAIN' && src !== undefined && INT_SOURCE.test(src))
          ? BigInt(v).toString()
          : goFloatKey(v);
    } else id = String(v);
    return { key: id, id, built: b };
  }

  // Is `k` a merge key `<<`? For pipelines: a plain (unquoted) `<<` or `!!merge`, as go-yaml
  // resolves it; for data: any key equal to the string "<<", as serde_yaml's apply_merge finds it.
  private isMergeKey(k: Node | null): boolean {
    if (!k || !this.Y.isScalar(k) || k.value !== '<<') return false;
    if (this.opts.mode === 'data') return true;
    const tag = (k as { tag?: string }).tag;
    return tag === 'tag:yaml.org,2002:merge' || (k.type === 'PLAIN' && !tag);
  }

  private mapping(items: Pair<Node | null, Node | null>[], level: number, node: Node): Built {
    this.building.add(node);
    this.stats.decodes++;
    const data = this.opts.mode === 'data';
    // Every key and value is built in document order (anchors are defined as they come); then the
    // entries are put together: explicit keys win over merged ones wherever they stand, merged
    // keys go where their `<<` stands, an earlier merge wins over a later one.
    type Part = { merge: [string, [unknown, unknown]][] } | { id: string; key: unknown; value: unknown; keyNode: Node | null };
    const parts: Part[] = [];
    let size = 1;
    let depth = 0;
    let jumps = 0;
    let mergeKeys = 0;
    const merged = new Set<Node>();
    const explicitIds = new Set<string>();
    for (const pair of items) {
      if (this.isMergeKey(pair.key)) {
        if (data && ++mergeKeys > 1) this.fail(pair.key, "a repeated merge key `<<`: minijinja-cli's YAML reader refuses repeated keys");
        this.stats.decodes++;
        const r = this.mergeSource(pair.value, level + 1, pair.key ?? node, merged);
        size += r.size;
        jumps += r.jumps;
        depth = Math.max(depth, r.depth);
        parts.push({ merge: r.entries });
        continue;
      }
      const k = this.key(pair.key, node, level + 1);
      const v = this.build(pair.value, level + 1, pair.key?.range?.[0]);
      size += k.built.size + v.size;
      jumps += k.built.jumps + v.jumps;
      depth = Math.max(depth, v.depth, k.built.depth);
      explicitIds.add(k.id);
      parts.push({ id: k.id, key: k.key, value: v.value, keyNode: pair.key });
    }
    const entries = new Map<string, [unknown, unknown]>();
    for (const part of parts) {
      if ('merge' in part) {
        for (const [id, kv] of part.merge) if (!explicitIds.has(id) && !entries.has(id)) entries.set(id, kv);
        continue;
      }
      const prev = entries.get(part.id);
      if (prev) {
        const shown = printable(String(part.key));
        if (data && this.opts.uniqueKeys) this.fail(part.keyNode ?? node, `a repeated key \`${shown}\`: minijinja-cli's YAML reader refuses repeated keys`);
        if (!data) this.warnings.push({ offset: part.keyNode?.range?.[0] ?? 0, message: `repeated key \`${shown}\`: the agent keeps the last value` });
        // The last value wins, at the first key's place.
        prev[1] = part.value;
      } else entries.set(part.id, [part.key, part.value]);
    }
    this.building.delete(node);
    let value: unknown;
    if (data) value = this.makeMap([...entries.values()]);
    else {
      const o: Record<string, unknown> = {};
      for (const [k, v] of entries.values()) {
        if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
        else o[k as string] = v;
      }
      value = o;
    }
    return { value, size, depth: depth + 1, jumps };
  }

  // The pairs a merge value brings: a mapping, an alias of one, or a list of those (the agent also
  // takes lists inside the list and aliases of lists; serde_yaml only mappings in one list).
  private mergeSource(
    v: Node | null,
    level: number,
    keyNode: Node,
    merged: Set<Node>,
  ): { entries: [string, [unknown, unknown]][]; size: number; depth: number; jumps: number } {
    const Y = this.Y;
    if (v === null) this.fail(keyNode, 'a merge key `<<` needs a mapping, an alias of one or a list of them, not null');
    let built: Built;
    if (Y.isAlias(v)) {
      const t = this.anchors.get(aliasName(v));
      if (t && this.building.has(t)) this.fail(v, `\`<<: *${aliasName(v)}\` merges a mapping into itself (or into a mapping inside it)`);
      built = this.alias(v as AliasNode, level);
    } else built = this.build(v, level);
    const entries = this.mergeEntries(v, merged, true);
    return { entries, size: built.size, depth: Math.max(0, built.depth - (Y.isSeq(this.resolve(v)) ? 1 : 0)), jumps: built.jumps };
  }

  private resolve(n: Node | null | undefined): Node | undefined {
    while (n && this.Y.isAlias(n)) n = this.anchors.get(aliasName(n));
    return n ?? undefined;
  }

  // The entries of an already built merge source `item` (or of each item of a list).
  private mergeEntries(item: Node, merged: Set<Node>, top: boolean): [string, [unknown, unknown]][] {
    const Y = this.Y;
    const data = this.opts.mode === 'data';
    const target = this.resolve(item);
    if (!target) this.fail(item, `alias \`*${aliasName(item)}\` refers to no anchor`);
    if (this.building.has(target)) this.fail(item, 'a merge key `<<` merges a mapping into itself (or into a mapping inside it)');
    if (merged.has(target)) return [];
    merged.add(target);
    if (Y.isSeq(target) && (top || !data)) {
      const out: [string, [unknown, unknown]][] = [];
      for (const sub of target.items as Node[]) out.push(...this.mergeEntries(sub, merged, false));
      return out;
    }
    const b = this.built.get(target);
    if (!Y.isMap(target) || !b) {
      const what = Y.isScalar(target) && target.value === null ? 'null' : Y.isSeq(target) ? 'a list inside its list' : 'a scalar';
      this.fail(
        item,
        `a merge key \`<<\` needs a mapping, an alias of one or a list of them, not ${what}${data && Y.isSeq(target) ? " (minijinja-cli's YAML reader merges only mappings)" : ''}`,
      );
    }
    const value = b.value;
    if (value instanceof Map) return [...(value as Map<unknown, unknown>)].map(([k, x]) => [keyId(k), [k, x]]);
    return Object.entries(value as Record<string, unknown>).map(([k, x]) => [k, [k, x]]);
  }
}

type AliasNode = Node & { source: string };
const aliasName = (n: unknown): string => (n as { source: string }).source;

// The identity data keys are compared by (serde_yaml compares values: 1 and 1.0 differ).
function keyId(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v !== 'object') return `${typeof v}:${String(v)}`;
  return `object:${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Map ? [...(x as Map<unknown, unknown>)] : x))}`;
}

// Checks what must hold before npm `yaml`'s recursive composer runs: nesting depth (its composer
// would overflow the stack) and double-quoted escapes of characters that do not exist (go-yaml and
// libyaml refuse them; JavaScript throws). Walks the CST without recursion.
function precheck(tokens: unknown[], maxDepth: number): YamlError | undefined {
  type Tok = { type?: string; offset?: number; source?: string; items?: unknown[]; value?: unknown; key?: unknown; start?: unknown };
  const stack: [unknown, number][] = tokens.map((t) => [t, 0]);
  while (stack.length) {
    const [raw, depth] = stack.pop()!;
    if (!raw || typeof raw !== 'object') continue;
    const t = raw as Tok;
    switch (t.type) {
      case 'document':
        stack.push([t.value, depth]);
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection': {
        const d = depth + 1;
        if (d > maxDepth) return new YamlError(t.offset ?? 0, depthMessage(maxDepth));
        for (const item of t.items ?? []) {
          const it = item as Tok;
          if (it && typeof it === 'object') {
            if (it.key) stack.push([it.key, d]);
            if (it.value) stack.push([it.value, d]);
            if (it.type) stack.push([it, d]);
          }
        }
        break;
      }
      case 'double-quoted-scalar': {
        const src = t.source ?? '';
        for (let i = src.indexOf('\\'); i >= 0; i = src.indexOf('\\', i + 2)) {
          const e = src[i + 1];
          const len = e === 'u' ? 4 : e === 'U' ? 8 : 0;
          if (!len) continue;
          const hex = src.slice(i + 2, i + 2 + len);
          if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) continue;
          const cp = parseInt(hex, 16);
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return new YamlError((t.offset ?? 0) + i, `\`\\${e}${hex}\` is not a Unicode character (go-yaml and libyaml refuse it): write a real character`);
        }
        break;
      }
      default:
        break;
    }
  }
  return undefined;
}

// Collects every anchor name of a document (to tell an alias before its anchor from one without).
function anchorNames(doc: Document): { names: Set<string>; events: number } {
  const Y = yamlLib();
  const names = new Set<string>();
  const stack: unknown[] = [doc.contents];
  let events = 4;
  while (stack.length) {
    const n = stack.pop();
    if (!n || typeof n !== 'object') continue;
    if (Y.isPair(n)) {
      stack.push(n.key, n.value);
      continue;
    }
    const a = (n as { anchor?: string }).anchor;
    if (a) names.add(a);
    if (Y.isMap(n) || Y.isSeq(n)) {
      events += 2;
      for (const it of n.items) stack.push(it);
    } else events++;
  }
  return { names, events };
}

// Where a document's content starts (its `---` line when it has one).
function docStart(doc: Document): number {
  const c = doc.contents as Node | null;
  return c?.range?.[0] ?? doc.range?.[0] ?? 0;
}

export interface ComposeHooks {
  // Data: how a scalar becomes a value, and a mapping's entries a map.
  scalar?: Convert;
  makeMap?: (entries: [unknown, unknown][]) => unknown;
  // npm `yaml` options (intAsBigInt for data).
  intAsBigInt?: boolean;
}

// Parses every document of `text`. Errors and warnings are located (1-based line and column).
export function composeYaml(text: string, opts: ComposeOptions, hooks: ComposeHooks = {}): ComposeResult {
  const Y = yamlLib();
  const lineCounter = new Y.LineCounter();
  const errors: YamlIssue[] = [];
  const warnings: YamlIssue[] = [];
  const at = (offset: number) => lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
  const push = (list: YamlIssue[], offset: number, message: string) => {
    const p = at(offset);
    list.push({ line: p.line, col: p.col, message });
  };
  const docs: ComposedDoc[] = [];
  const starts: { line: number; col: number }[] = [];
  let tokens: unknown[];
  try {
    tokens = Array.from(new Y.Parser(lineCounter.addNewLine).parse(text));
  } catch {
    errors.push({ line: 1, col: 1, message: 'cannot read this YAML' });
    return { docs, starts, lineCounter, errors, warnings };
  }
  const pre = precheck(tokens, opts.maxDepth);
  if (pre) {
    push(errors, pre.offset, pre.message);
    return { docs, starts, lineCounter, errors, warnings };
  }
  let parsed: Document[];
  try {
    const composer = new Y.Composer({
      merge: false,
      uniqueKeys: false,
      strict: false,
      prettyErrors: false,
      logLevel: 'silent',
      intAsBigInt: hooks.intAsBigInt === true,
    });
    parsed = Array.from(composer.compose(tokens as Parameters<typeof composer.compose>[0], false, text.length)) as Document[];
  } catch {
    errors.push({ line: 1, col: 1, message: 'cannot read this YAML' });
    return { docs, starts, lineCounter, errors, warnings };
  }
  const scalar: Convert = hooks.scalar ?? ((v) => v);
  const makeMap = hooks.makeMap ?? ((e) => new Map(e));
  for (const doc of parsed) {
    starts.push(at(docStart(doc)));
    for (const e of doc.errors) push(errors, e.pos[0], describeYamlError(e.code, e.message, text.slice(e.pos[0], e.pos[0] + 1)));
    if (doc.errors.length) continue;
    if (opts.mode === 'data')
      for (const w of doc.warnings)
        if (w.code !== 'TAG_RESOLVE_FAILED') push(warnings, w.pos[0], describeYamlError(w.code, w.message, text.slice(w.pos[0], w.pos[0] + 1)));
    const { names, events } = anchorNames(doc);
    const stats: Stats = { decodes: 1, aliased: 0, jumps: 0, jumpLimit: events * 100 };
    const c = new Composer(opts, names, stats, scalar, makeMap);
    try {
      const b = c.build(doc.contents as Node | null, 0, 0);
      docs.push({ value: b.value, doc });
      for (const w of c.warnings) push(warnings, w.offset, w.message);
    } catch (err) {
      if (err instanceof YamlError) push(errors, err.offset, err.message);
      else if (err instanceof RangeError) push(errors, doc.range?.[0] ?? 0, 'the YAML is too deeply nested or too large');
      else throw err;
    }
  }
  return { docs, starts, lineCounter, errors, warnings };
}
