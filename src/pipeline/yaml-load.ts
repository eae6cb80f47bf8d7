// Parses a pipeline the way the agent's go-yaml (and PyYAML) does, on top of npm `yaml`: YAML 1.2
// core scalars (`yes`/`no` stay strings), merge keys, a repeated key keeps the last value (with a
// warning), every document of a multi-document file, and multi-line quoted scalars whose
// continuation lines are indented less than their key (go-yaml and PyYAML accept those; npm `yaml`
// rejects them). The text itself is never rewritten: only a parsing copy is re-indented.
import { closingQuote } from '../util/fast-yaml-scalars.js';
import { composeYaml, PIPELINE_MAX_DEPTH, yamlLib, type YamlIssue } from './yaml-compose.js';
import type { Document, LineCounter, Node } from 'yaml';

export { yamlLib };

export type { YamlIssue };

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
  // Open flow collections (`[`, `{` where a value starts), and the indentation of the line that
  // opened the outermost: only inside one does `,` start a new value.
  let flow = 0;
  let flowIndent = -1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    let indent = line.length - line.trimStart().length;
    if (blockIndent >= 0) {
      if (line.trim() === '' || indent > blockIndent) continue;
      blockIndent = -1;
    }
    if (flow > 0 && line.trim() !== '' && indent <= flowIndent) flow = 0;
    let tokenStart = true;
    for (let j = indent; j < line.length; j++) {
      const c = line[j]!;
      if (c === ' ' || c === '\t') continue;
      if (c === '#' && (j === 0 || line[j - 1] === ' ' || line[j - 1] === '\t')) break;
      if (tokenStart && (c === '"' || c === "'")) {
        const end = scanQuoted(lines, i, j + 1, c);
        if (end.line > i) {
          indent = contentIndent(line, indent);
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
        blockIndent = contentIndent(line, indent);
        break;
      }
      if (c === '-' && tokenStart && (line[j + 1] === ' ' || j + 1 === line.length)) continue;
      if (c === '?' && tokenStart && line[j + 1] === ' ') continue;
      // Inside a flow collection `[`, `{` always open one (plain scalars there cannot hold them).
      if ((c === '[' || c === '{') && (tokenStart || flow > 0)) {
        tokenStart = true;
        if (flow++ === 0) flowIndent = indent;
        continue;
      }
      if ((c === ']' || c === '}') && flow > 0) {
        flow--;
        tokenStart = false;
        continue;
      }
      if (c === ',' && flow > 0) {
        tokenStart = true;
        continue;
      }
      // `:` ends a key; inside a flow collection also right before a value (JSON's `"a":1`).
      if (c === ':' && (line[j + 1] === ' ' || j + 1 === line.length || flow > 0)) {
        tokenStart = true;
        continue;
      }
      tokenStart = false;
    }
  }
  return changed ? lines.join('\n') : text;
}

// The column where the mapping of a line starts: after any `- ` of compact list items.
function contentIndent(line: string, indent: number): number {
  while (line[indent] === '-' && (line[indent + 1] === ' ' || line[indent + 1] === '\t')) {
    indent++;
    while (line[indent] === ' ' || line[indent] === '\t') indent++;
  }
  return indent;
}

// Finds the end of a quoted scalar that starts after `quote` at (line, col), across lines.
function scanQuoted(lines: string[], line: number, col: number, quote: string): { line: number; col: number } {
  for (let i = line; i < lines.length; i++) {
    const end = closingQuote(lines[i]!, i === line ? col : 0, quote);
    if (end >= 0) return { line: i, col: end };
  }
  return { line, col: lines[line]!.length };
}

// Reads every document of a pipeline as the agent does (yaml-compose.ts: aliases, merge keys, keys,
// limits); errors and warnings are located, in bkci's words.
export function loadPipelineYaml(text: string): LoadedYaml {
  const r = composeYaml(reindentQuotedScalars(text), { mode: 'pipeline', maxDepth: PIPELINE_MAX_DEPTH });
  return { docs: r.docs, lineCounter: r.lineCounter, errors: r.errors, warnings: r.warnings };
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
