// A fast parser for the YAML that pipelines and test lists are made of: block mappings and
// sequences, plain/quoted/block scalars, flow collections (fast-yaml-flow.ts), comments and `---`
// documents, resolved with the YAML 1.2 core schema exactly as npm `yaml` resolves them. Anything
// else (anchors, aliases, tags, merge keys, complex keys, explicit block indentation, plain scalars
// folded inside flow collections, tabs as indentation, anything malformed) makes it give up and
// return undefined; the caller then uses npm
// `yaml`, which also gives the error positions. A cold Node process parses a 240 KB pipeline with
// this several times faster than with the general parser, and a test compares the two on every
// YAML file the suite knows.
//
// Multi-line quoted scalars may continue at any indentation (as go-yaml and PyYAML accept).
import { FlowParser } from './fast-yaml-flow.js';
import {
  closingQuote,
  escapeAt,
  GiveUp,
  giveUp,
  isWs,
  resolvePlain,
  unescapeDouble,
  type FastYamlOptions,
  type FastYamlResult,
  type RepeatedKey,
} from './fast-yaml-scalars.js';

export { resolvePlain, type FastYamlOptions, type FastYamlResult, type RepeatedKey };

const LEADING_SPACES = / */y;
const ODD_SPACE = /[\v\f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;

// Where a quoted scalar's ordinary characters end on a line.
const DOUBLE_STOP = /["\\]/g;
const SINGLE_STOP = /'/g;

// Line kinds; a line is blank (skipped between nodes) when its kind is EMPTY or more.
const CONTENT = 0;
const MARKER = 1; // a document marker: `---` or `...` at column 0, alone or before white space
const EMPTY = 2;
const COMMENT = 3;

class Parser {
  private readonly lines: string[];
  private i = 0;
  readonly repeated: RepeatedKey[] = [];
  // Collections open around the current node, and how many may be.
  depth = 0;
  private readonly maxDepth: number;

  constructor(
    text: string,
    private readonly opts: FastYamlOptions,
  ) {
    this.maxDepth = opts.maxDepth ?? 1000;
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    // Characters JavaScript's trim() removes but YAML does not count as white space (a byte order
    // mark past the start, U+2028...), and NEL: npm `yaml` and go-yaml each treat them their own
    // way, so they are left to the general path.
    if (ODD_SPACE.test(text)) giveUp();
    this.lines = text.split('\n');
    if (text.includes('\r')) {
      // A carriage return alone (not before a line feed): go-yaml and npm `yaml` differ on it.
      if (/\r(?!\n)/.test(text)) giveUp();
      for (let k = 0; k < this.lines.length; k++) {
        const l = this.lines[k]!;
        if (l.endsWith('\r')) this.lines[k] = l.slice(0, -1);
      }
      text = this.lines.join('\n');
    }
    this.text = text;
    const count = this.lines.length;
    this.kind = new Uint8Array(count);
    this.indent = new Int32Array(count);
    for (let k = 0; k < count; k++) {
      const l = this.lines[k]!;
      // The leading spaces, counted by a regular expression (natively, not a character at a time).
      LEADING_SPACES.lastIndex = 0;
      LEADING_SPACES.test(l);
      let n = LEADING_SPACES.lastIndex;
      let c = l.charCodeAt(n);
      // A tab in the indentation: only npm `yaml` reads that.
      this.indent[k] = c === 9 ? -1 : n;
      while (c === 32 || c === 9) c = l.charCodeAt(++n);
      if (n === l.length) this.kind[k] = EMPTY;
      else if (c === 35) this.kind[k] = COMMENT;
      else if (
        n === 0 &&
        (c === 45 || c === 46) &&
        (l.startsWith('---') || l.startsWith('...')) &&
        (l.length === 3 || l.charCodeAt(3) === 32 || l.charCodeAt(3) === 9)
      )
        this.kind[k] = MARKER;
      else this.kind[k] = CONTENT;
    }
  }

  private readonly text: string;
  // Where each line starts in the text: worked out when a flow collection first needs it.
  private starts: number[] | undefined;
  private get lineStarts(): number[] {
    if (!this.starts) {
      this.starts = new Array<number>(this.lines.length);
      let off = 0;
      for (let k = 0; k < this.lines.length; k++) {
        this.starts[k] = off;
        off += this.lines[k]!.length + 1;
      }
    }
    return this.starts;
  }
  // Per line: CONTENT, MARKER, EMPTY (white space only) or COMMENT (a comment only).
  private readonly kind: Uint8Array;
  // Per line: the spaces before its content (-1: a tab follows them). A compact nested node
  // (`- key: v`) counts as indented to its own first character.
  private readonly indent: Int32Array;

  // The line holding text offset `pos`.
  private lineAt(pos: number): number {
    let lo = 0;
    const lineStarts = this.lineStarts;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  // The indentation of line k.
  private indentOf(k: number): number {
    const n = this.indent[k]!;
    if (n < 0) giveUp();
    return n;
  }

  // Moves past blank and comment-only lines.
  private skipBlank(): void {
    const kind = this.kind;
    const count = kind.length;
    let i = this.i;
    while (i < count && kind[i]! >= EMPTY) i++;
    this.i = i;
  }

  // Is line k a document marker?
  private isDocMarker(k: number): boolean {
    return this.kind[k] === MARKER;
  }

  documents(): unknown[] {
    const docs: unknown[] = [];
    for (;;) {
      this.skipBlank();
      if (this.i >= this.lines.length) break;
      let line = this.lines[this.i]!;
      if (line.startsWith('%')) giveUp();
      let explicit = false;
      if (line === '---' || line.startsWith('--- ') || line.startsWith('---\t')) {
        const rest = line.slice(3).trim();
        if (rest !== '' && !rest.startsWith('#')) giveUp();
        explicit = true;
        this.i++;
        this.skipBlank();
      }
      if (this.i >= this.lines.length || this.isDocMarker(this.i)) {
        if (explicit) docs.push(null);
        if (this.i < this.lines.length && this.lines[this.i]!.startsWith('...')) this.i++;
        continue;
      }
      line = this.lines[this.i]!;
      const value = this.blockNode(-1);
      docs.push(value);
      this.skipBlank();
      if (this.i < this.lines.length) {
        const l = this.lines[this.i]!;
        if (l.startsWith('...')) {
          if (l.slice(3).trim() !== '' && !l.slice(3).trim().startsWith('#')) giveUp();
          this.i++;
        } else if (!this.isDocMarker(this.i)) giveUp();
      }
    }
    return docs;
  }

  // The node starting at the next content line, if it is indented more than `parent`.
  private blockNode(parent: number): unknown {
    this.skipBlank();
    if (this.i >= this.lines.length) return null;
    if (this.isDocMarker(this.i)) return null;
    const n = this.indentOf(this.i);
    if (n <= parent) return null;
    return this.nodeAt(n, parent);
  }

  // The node whose first content is at column n of the current line.
  private nodeAt(n: number, parent: number): unknown {
    const line = this.lines[this.i]!;
    if (line.charCodeAt(n) === 45 && wsOrEnd(line, n + 1)) return this.sequence(n);
    const colon = this.keyEnd(line, n);
    if (colon >= 0) return this.mapping(n, colon);
    return this.inlineValue(n, parent);
  }

  // If a mapping key starts at column n, the column of its `:`; else -1.
  private keyEnd(line: string, n: number): number {
    const c = line[n];
    if (c === '"' || c === "'") {
      const end = closingQuote(line, n + 1, line[n]!);
      if (end < 0) return -1;
      let k = end + 1;
      while (line.charCodeAt(k) === 32) k++;
      return line.charCodeAt(k) === 58 && wsOrEnd(line, k + 1) ? k : -1;
    }
    if (c === undefined || '[]{}#&*!|>%@`,?'.includes(c)) return -1;
    if (c === '-' && wsOrEnd(line, n + 1)) return -1;
    // The first `: ` (or `:` at the end) before any ` #` comment.
    for (let k = line.indexOf(':', n); k >= 0; k = line.indexOf(':', k + 1)) {
      if (wsOrEnd(line, k + 1)) {
        const hash = line.indexOf('#', n);
        if (hash >= 0 && hash < k && /[ \t]#/.test(line.slice(n, k))) return -1;
        return k;
      }
    }
    return -1;
  }

  private key(raw: string, quoted: boolean): unknown {
    if (quoted) return raw;
    const v = resolvePlain(raw, this.opts.intAsBigInt === true, this.opts.serdeNumbers === true);
    if (this.opts.mapAsMap) return v;
    if (typeof v !== 'string') giveUp();
    return v;
  }

  // The next content line of a collection at indentation n, or undefined where the collection
  // ends (less indentation, a document marker, the end); deeper indentation here is an error.
  private entryLine(n: number): string | undefined {
    const kind = this.kind;
    let i = this.i;
    while (i < kind.length && kind[i]! >= EMPTY) i++;
    this.i = i;
    if (i >= kind.length || kind[i] === MARKER) return undefined;
    const ind = this.indent[i]!;
    if (ind < 0) giveUp();
    if (ind < n) return undefined;
    if (ind > n) giveUp();
    return this.lines[i];
  }

  // A block mapping at indentation n; `firstColon` is where the current line's key ends.
  private mapping(n: number, firstColon: number): unknown {
    if (++this.depth > this.maxDepth) giveUp();
    const m = this.opts.mapAsMap ? new Map<unknown, unknown>() : undefined;
    const o: Record<string, unknown> = {};
    for (let line = this.entryLine(n); line !== undefined; line = this.entryLine(n)) {
      const colon = firstColon >= 0 ? firstColon : this.keyEnd(line, n);
      firstColon = -1;
      if (colon < 0) giveUp();
      let rawKey: string;
      let quoted = false;
      if (line[n] === '"' || line[n] === "'") {
        const end = closingQuote(line, n + 1, line[n]!);
        rawKey = line[n] === '"' ? unescapeDouble(line.slice(n + 1, end)) : line.slice(n + 1, end).replace(/''/g, "'");
        quoted = true;
      } else {
        rawKey = line.slice(n, colon).trimEnd();
      }
      // A merge key (and, for serde_yaml's data, a quoted "<<" too): left to npm `yaml`'s path.
      if (rawKey === '<<') giveUp();
      const key = this.key(rawKey, quoted);
      const keyLine = this.i + 1;
      let k = colon + 1;
      for (let c = line.charCodeAt(k); c === 32 || c === 9; c = line.charCodeAt(++k));
      let value: unknown;
      if (k >= line.length || line.charCodeAt(k) === 35) {
        this.i++;
        this.skipBlank();
        if (this.i < this.lines.length && !this.isDocMarker(this.i)) {
          const next = this.lines[this.i]!;
          const ni = this.indentOf(this.i);
          // A sequence may sit at the key's own indentation.
          if (ni === n && next.charCodeAt(n) === 45 && wsOrEnd(next, n + 1)) value = this.sequence(n);
          else if (ni > n) value = this.nodeAt(ni, n);
          else value = null;
        } else value = null;
      } else {
        if (line.charCodeAt(k) === 45 && wsOrEnd(line, k + 1)) giveUp();
        if (this.keyEnd(line, k) >= 0) giveUp(); // `a: b: c`
        value = this.inlineValue(k, n);
      }
      if (m) {
        if (m.has(key)) this.repeated.push({ line: keyLine, col: n + 1, key: rawKey });
        m.set(key, value);
      } else {
        if (key === '__proto__') giveUp();
        if (Object.prototype.hasOwnProperty.call(o, key as string)) this.repeated.push({ line: keyLine, col: n + 1, key: rawKey });
        o[key as string] = value;
      }
    }
    this.depth--;
    return m ?? o;
  }

  private sequence(n: number): unknown[] {
    if (++this.depth > this.maxDepth) giveUp();
    const out: unknown[] = [];
    for (let line = this.entryLine(n); line !== undefined; line = this.entryLine(n)) {
      if (!(line.charCodeAt(n) === 45 && wsOrEnd(line, n + 1))) break;
      let k = n + 1;
      while (line[k] === ' ') k++;
      if (line[k] === '\t') giveUp();
      if (k >= line.length || line[k] === '#') {
        this.i++;
        out.push(this.blockNode(n));
        continue;
      }
      // Compact nested node: its first line counts as indented to column k.
      this.indent[this.i] = k;
      out.push(this.nodeAt(k, n));
    }
    this.depth--;
    return out;
  }

  // A value starting at column k of the current line; `parent` is the indentation of the
  // mapping key or sequence dash it belongs to. Consumes the lines it spans.
  private inlineValue(k: number, parent: number): unknown {
    const line = this.lines[this.i]!;
    const c = line[k]!;
    if (c === '"' || c === "'") return this.quoted(k);
    if (c === '|' || c === '>') return this.blockScalar(k, parent);
    if (c === '[' || c === '{') {
      const f = new FlowParser(this.text, this.lineStarts[this.i]! + k, this.opts, this.repeated, this.i + 1, parent, this.maxDepth - this.depth);
      const v = f.value();
      // Only white space or a comment may follow on the closing line.
      const endLine = this.lineAt(f.pos);
      const rest = this.text.slice(f.pos, this.lineStarts[endLine]! + this.lines[endLine]!.length);
      if (rest.trim() !== '' && !/^[ \t]+#/.test(rest)) giveUp();
      this.i = endLine + 1;
      return v;
    }
    // An indicator cannot start a plain scalar.
    if ('&*!%@`]},'.includes(c) || ((c === '?' || c === ':' || c === '-') && wsOrEnd(line, k + 1))) giveUp();
    // Plain scalar, possibly continued on more-indented lines.
    let text = plainEnd(line, k);
    this.i++;
    let pendingBreaks = 0;
    for (;;) {
      if (this.i >= this.lines.length) break;
      if (this.kind[this.i] === EMPTY) {
        pendingBreaks++;
        this.i++;
        continue;
      }
      const l = this.lines[this.i]!;
      const ind = this.indentOf(this.i);
      if (ind <= parent || this.kind[this.i] === COMMENT || this.isDocMarker(this.i)) break;
      const trimmed = l.trim();
      if (trimmed === '') giveUp(); // white space YAML does not count as such (e.g. U+00A0)
      if (this.keyEnd(l, ind) >= 0 || / #/.test(l) || (l[ind] === '-' && isWs(l[ind + 1]))) giveUp();
      text += pendingBreaks ? '\n'.repeat(pendingBreaks) : ' ';
      text += trimmed;
      pendingBreaks = 0;
      this.i++;
    }
    // Blank lines after the scalar are not part of it.
    if (pendingBreaks) this.i -= pendingBreaks;
    return resolvePlain(text, this.opts.intAsBigInt === true, this.opts.serdeNumbers === true);
  }

  private quoted(k: number): string {
    const q = this.lines[this.i]![k]!;
    let out = '';
    let line = this.i;
    let col = k + 1;
    for (;;) {
      const l = this.lines[line]!;
      let seg = '';
      let closed = -1;
      let escapedBreak = false;
      // Runs of ordinary characters are sliced, not copied one by one.
      const stop = q === '"' ? DOUBLE_STOP : SINGLE_STOP;
      let j = col;
      let from = col;
      while (j < l.length) {
        stop.lastIndex = j;
        const at = stop.exec(l)?.index;
        if (at === undefined) {
          j = l.length;
          break;
        }
        seg += l.slice(from, at);
        j = at;
        if (q === "'") {
          if (l.charCodeAt(j + 1) === 39) {
            seg += "'";
            j += 2;
            from = j;
            continue;
          }
          closed = j;
          break;
        }
        if (l.charCodeAt(j) === 92) {
          if (j + 1 >= l.length) {
            escapedBreak = true;
            from = j = l.length;
            break;
          }
          const [x, len] = escapeAt(l, j);
          seg += x;
          j += len;
          from = j;
          continue;
        }
        closed = j;
        break;
      }
      if (closed < 0 && !escapedBreak) seg += l.slice(from);
      if (closed >= 0) {
        out += seg;
        const rest = l.slice(closed + 1);
        if (rest.trim() !== '' && !/^\s+#/.test(rest)) giveUp();
        this.i = line + 1;
        return out;
      }
      // The scalar continues: fold the line break. Raw white space before the break goes
      // (escaped white space stays); leading white space of the next line goes.
      if (!escapedBreak) {
        const raw = l.length - l.replace(/[ \t]+$/, '').length;
        if (raw && l[l.length - raw - 1] === '\\') giveUp();
        out += raw ? seg.slice(0, seg.length - raw) : seg;
      } else out += seg;
      let empties = 0;
      line++;
      while (line < this.lines.length && this.lines[line]!.trim() === '') {
        empties++;
        line++;
      }
      if (line >= this.lines.length) giveUp();
      if (this.isDocMarker(line)) giveUp();
      if (!escapedBreak) out += empties ? '\n'.repeat(empties) : ' ';
      else if (empties) out += '\n'.repeat(empties);
      const next = this.lines[line]!;
      col = next.length - next.replace(/^[ \t]+/, '').length;
    }
  }

  private blockScalar(k: number, parent: number): string {
    const line = this.lines[this.i]!;
    const folded = line[k] === '>';
    let chomp: 'clip' | 'strip' | 'keep' = 'clip';
    let j = k + 1;
    for (; j < line.length && !isWs(line[j]); j++) {
      const ch = line[j]!;
      if (ch === '-' && chomp === 'clip') chomp = 'strip';
      else if (ch === '+' && chomp === 'clip') chomp = 'keep';
      else giveUp(); // explicit indentation indicators are left to npm `yaml`
    }
    const rest = line.slice(j).trim();
    if (rest !== '' && !rest.startsWith('#')) giveUp();
    this.i++;
    // Content indentation: that of the first non-empty line, which must be deeper than the parent.
    let indent = -1;
    const start = this.i;
    let end = this.i;
    let maxLeadingEmpty = 0;
    // After a final line break there is no line (split() gives a last '' for it). White space
    // that ends the text without a line break: left to npm `yaml`.
    const lastLine = this.lines[this.lines.length - 1]!;
    if (lastLine !== '' && lastLine.trim() === '') giveUp();
    const count = this.lines.length - (lastLine === '' ? 1 : 0);
    for (let m = this.i; m < count; m++) {
      const l = this.lines[m]!;
      if (l.trim() === '') {
        if (indent < 0) maxLeadingEmpty = Math.max(maxLeadingEmpty, l.length);
        end = m + 1;
        continue;
      }
      const ind = this.indentOf(m);
      if (indent < 0) {
        if (ind <= parent || this.isDocMarker(m)) break;
        indent = ind;
        if (maxLeadingEmpty > indent) giveUp();
      }
      if (ind < indent) break;
      end = m + 1;
    }
    if (indent < 0) {
      // No content: only empty lines (kept with `+`).
      this.i = end;
      return chomp === 'keep' ? '\n'.repeat(end - start) : '';
    }
    // A line of at most `indent` spaces is empty; anything longer is content (even if blank).
    const body = this.lines.slice(start, end).map((l) => (l.trim() === '' && l.length <= indent ? null : l.slice(indent)));
    let last = body.length - 1;
    while (last >= 0 && body[last] === null) last--;
    const trailing = body.length - 1 - last;
    const content = body.slice(0, last + 1);
    const text = folded ? foldLines(content) : content.map((l) => l ?? '').join('\n');
    let tail = '';
    if (chomp === 'clip') tail = content.length ? '\n' : '';
    else if (chomp === 'keep') tail = (content.length ? '\n' : '') + '\n'.repeat(trailing);
    this.i = end;
    return text + tail;
  }
}

// Folds block-scalar lines: a break between two normal lines becomes a space, unless empty lines
// sit between them; lines starting with white space ("more indented") keep their breaks.
function foldLines(lines: (string | null)[]): string {
  let out = '';
  let prevNormal = false;
  let empties = 0;
  let first = true;
  for (const l of lines) {
    if (l === null) {
      empties++;
      continue;
    }
    const normal = !isWs(l[0]) && l !== '';
    if (first) out += '\n'.repeat(empties);
    else if (prevNormal && normal) out += empties ? '\n'.repeat(empties) : ' ';
    else out += '\n' + '\n'.repeat(empties);
    out += l;
    prevNormal = normal;
    empties = 0;
    first = false;
  }
  return out;
}

// Is the character at k white space, or past the end of the line?
function wsOrEnd(line: string, k: number): boolean {
  const c = line.charCodeAt(k);
  return c === 32 || c === 9 || k >= line.length;
}

// End of a plain scalar on one line (before ` #`), trimmed.
function plainEnd(line: string, k: number): string {
  let e = line.length;
  for (let j = line.indexOf('#', k); j >= 0; j = line.indexOf('#', j + 1)) {
    if (j > k && isWs(line[j - 1])) {
      e = j;
      break;
    }
  }
  return line.slice(k, e).trim();
}

// Parses `text`, or returns undefined when it uses YAML this parser leaves to npm `yaml`.
export function fastParseYaml(text: string, opts: FastYamlOptions = {}): FastYamlResult | undefined {
  try {
    const p = new Parser(text, opts);
    const docs = p.documents();
    return { docs, repeatedKeys: p.repeated };
  } catch (err) {
    if (err instanceof GiveUp) return undefined;
    throw err;
  }
}
