// Parses a pipeline the way the agent's go-yaml (and PyYAML) does, on top of npm `yaml`: YAML 1.2
// core scalars (`yes`/`no` stay strings), merge keys, a repeated key keeps the last value (with a
// warning), every document of a multi-document file, and multi-line quoted scalars whose
// continuation lines are indented less than their key (go-yaml and PyYAML accept those; npm `yaml`
// rejects them). The text itself is never rewritten: only a parsing copy is re-indented.
import { createRequire } from 'node:module';
import { closingQuote } from '../util/fast-yaml-scalars.js';
import type { Document, LineCounter, Node } from 'yaml';

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

export interface LoadedYaml {
  docs: { value: unknown; doc: Document }[];
  lineCounter: LineCounter;
  errors: YamlIssue[];
  warnings: YamlIssue[];
}

const BLOCK_SCALAR = /^[|>][-+0-9]*\s*(#.*)?$/;

// Re-indents continuation lines of multi-line quoted scalars to one column past the line that
// opened them. Leading white space of such lines is folded away by YAML, so values are unchanged.
export function reindentQuotedScalars(text: string): string {
  const lines = text.split('\n');
  let blockIndent = -1;
  let changed = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const indent = line.length - line.trimStart().length;
    if (blockIndent >= 0) {
      if (line.trim() === '' || indent > blockIndent) continue;
      blockIndent = -1;
    }
    let tokenStart = true;
    for (let j = indent; j < line.length; j++) {
      const c = line[j]!;
      if (c === ' ' || c === '\t') continue;
      if (c === '#' && (j === 0 || line[j - 1] === ' ' || line[j - 1] === '\t')) break;
      if (tokenStart && (c === '"' || c === "'")) {
        const end = scanQuoted(lines, i, j + 1, c);
        if (end.line > i) {
          for (let k = i + 1; k <= end.line; k++) {
            const l = lines[k]!;
            const ind = l.length - l.trimStart().length;
            if (l.trim() !== '' && ind <= indent) {
              lines[k] = ' '.repeat(indent + 1) + l.trimStart();
              changed = true;
            }
          }
          i = end.line;
          j = end.col;
          // Continue scanning the rest of the closing line for further tokens.
          const rest = lines[i]!;
          for (j = end.col; j < rest.length && rest[j] !== '#'; j++);
          break;
        }
        j = end.col;
        tokenStart = false;
        continue;
      }
      if (tokenStart && (c === '|' || c === '>') && BLOCK_SCALAR.test(line.slice(j))) {
        blockIndent = indent;
        break;
      }
      if (c === '-' && tokenStart && (line[j + 1] === ' ' || j + 1 === line.length)) continue;
      if (c === '?' && tokenStart && line[j + 1] === ' ') continue;
      if (c === '[' || c === '{' || c === ',') {
        tokenStart = true;
        continue;
      }
      if (c === ':' && (line[j + 1] === ' ' || j + 1 === line.length)) {
        tokenStart = true;
        continue;
      }
      tokenStart = false;
    }
  }
  return changed ? lines.join('\n') : text;
}

// Finds the end of a quoted scalar that starts after `quote` at (line, col), across lines.
function scanQuoted(lines: string[], line: number, col: number, quote: string): { line: number; col: number } {
  for (let i = line; i < lines.length; i++) {
    const end = closingQuote(lines[i]!, i === line ? col : 0, quote);
    if (end >= 0) return { line: i, col: end };
  }
  return { line, col: lines[line]!.length };
}

function duplicateKeys(node: unknown, lc: LineCounter, out: YamlIssue[]): void {
  const { isMap, isScalar, isSeq } = yamlLib();
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      if (isScalar(pair.key)) {
        const k = String(pair.key.value);
        if (seen.has(k) && k !== '<<') {
          const pos = lc.linePos(pair.key.range?.[0] ?? 0);
          out.push({ line: pos.line, col: pos.col, message: `repeated key \`${k}\`: the agent keeps the last value` });
        }
        seen.add(k);
      }
      duplicateKeys(pair.value, lc, out);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) duplicateKeys(item, lc, out);
  }
}

export function loadPipelineYaml(text: string): LoadedYaml {
  const YAML = yamlLib();
  const lineCounter = new YAML.LineCounter();
  const fixed = reindentQuotedScalars(text);
  const parsed = YAML.parseAllDocuments(fixed, { lineCounter, merge: true, uniqueKeys: false, strict: false, prettyErrors: false });
  const errors: YamlIssue[] = [];
  const warnings: YamlIssue[] = [];
  const docs: LoadedYaml['docs'] = [];
  const list = Array.isArray(parsed) ? parsed : [];
  if (!Array.isArray(parsed)) {
    errors.push({ line: 1, col: 1, message: 'cannot parse YAML' });
  }
  for (const doc of list) {
    for (const e of doc.errors) {
      const p = lineCounter.linePos(e.pos[0]);
      errors.push({ line: p.line, col: p.col, message: e.message.split('\n')[0]! });
    }
    duplicateKeys(doc.contents, lineCounter, warnings);
    if (doc.errors.length) continue;
    docs.push({ value: doc.toJS({ maxAliasCount: -1 }), doc });
  }
  return { docs, lineCounter, errors, warnings };
}

// The 1-based position of the node at `path` (or its nearest ancestor that exists).
export function positionOf(doc: Document, lc: LineCounter, path: (string | number)[]): { line: number; col: number } {
  const { isMap, isScalar } = yamlLib();
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as Node | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) {
      // For a property, point at its key rather than the value.
      if (n > 0 && n === path.length) {
        const parent = doc.getIn(path.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[n - 1]));
          if (pair && isScalar(pair.key) && pair.key.range) return lc.linePos(pair.key.range[0]);
        }
      }
      return lc.linePos(node.range[0]);
    }
  }
  return { line: 1, col: 1 };
}
