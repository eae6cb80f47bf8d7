// DATA files ending in .json or .json5 are JSON5, as minijinja-cli reads them: comments, trailing
// commas, unquoted keys, single-quoted strings, hex numbers, leading/trailing decimal points,
// +Infinity/NaN, line continuations in strings. This turns JSON5 text into the JSON subset of YAML
// (numbers keep their written form, so `1.0` stays a float), keeping every line where it was so a
// later error still names the right line. Anything that is not JSON5 is an error at its position.
import { InputError } from '../util/errors.js';

// Unicode classes, built on first use: making them costs ~0.5 ms, which a YAML data file (the
// usual case) should not pay.
let ID_START: RegExp;
let ID_PART: RegExp;
let WS: RegExp;
function unicodeClasses(): void {
  ID_START ??= /[A-Za-z_$\p{L}]/u;
  ID_PART ??= /[A-Za-z0-9_$\p{L}\p{Mn}\p{Mc}\p{Nd}\p{Pc}\u200c\u200d]/u;
  WS ??= /[\t\n\v\f\r \u00a0\u2028\u2029\ufeff\p{Zs}]/u;
}
const ESCAPES: Record<string, string> = { "'": "'", '"': '"', '\\': '\\', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

// The index of the next character that is not white space or inside a comment.
function skipBlank(text: string, k: number): number {
  for (;;) {
    while (k < text.length && WS.test(text[k]!)) k++;
    if (text.startsWith('//', k)) {
      while (k < text.length && !/[\n\r\u2028\u2029]/.test(text[k]!)) k++;
    } else if (text.startsWith('/*', k)) {
      const end = text.indexOf('*/', k + 2);
      if (end < 0) return text.length;
      k = end + 2;
    } else return k;
  }
}

export function json5ToJson(text: string, source: string): string {
  // Plain JSON (the common case) is already what YAML reads: no need to walk it.
  try {
    JSON.parse(text);
    return text;
  } catch {
    // JSON5, or not JSON at all: below.
  }
  unicodeClasses();
  let i = 0;
  let out = '';
  // What the last significant token was, to tell a key from a value and to drop trailing commas.
  let pendingComma = false;
  const n = text.length;
  const fail = (what: string, at = i): never => {
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    const col = at - before.lastIndexOf('\n');
    throw new InputError(`${source}:${line}:${col}: not JSON5: ${what}`, 'fix the syntax (a .json DATA file is read as JSON5, as minijinja-cli reads it)');
  };
  const flushComma = (closing: boolean) => {
    if (pendingComma && !closing) out += ',';
    pendingComma = false;
  };
  while (i < n) {
    const c = text[i]!;
    if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n' && text[i] !== '\r' && text[i] !== '\u2028' && text[i] !== '\u2029') i++;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) fail('a comment that never ends');
      out += text.slice(i, end + 2).replace(/[^\n]/g, '');
      i = end + 2;
      continue;
    }
    if (WS.test(c)) {
      out += c === '\n' ? '\n' : ' ';
      i++;
      continue;
    }
    if (c === ',') {
      if (pendingComma) fail('two commas in a row');
      pendingComma = true;
      i++;
      continue;
    }
    const closing = c === '}' || c === ']';
    flushComma(closing);
    if (c === '{' || c === '}' || c === '[' || c === ']' || c === ':') {
      out += c;
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= n) fail('a string that never ends', start);
        const ch = text[i]!;
        if (ch === c) break;
        if (ch === '\n' || ch === '\r') fail('a line break inside a string (end the line with \\ to continue it)');
        if (ch !== '\\') {
          value += ch;
          i++;
          continue;
        }
        const e = text[i + 1] ?? '';
        i += 2;
        if (e in ESCAPES) value += ESCAPES[e];
        else if (e === '0' && !/[0-9]/.test(text[i] ?? '')) value += '\0';
        else if (e === 'x' || e === 'u') {
          const len = e === 'x' ? 2 : 4;
          const hex = text.slice(i, i + len);
          if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) fail(`a bad \\${e} escape`, i - 2);
          value += String.fromCharCode(parseInt(hex, 16));
          i += len;
        } else if (e === '\r') {
          if (text[i] === '\n') i++;
        } else if (e === '\n' || e === '\u2028' || e === '\u2029') {
          // a line continuation: nothing
        } else if (/[1-9]/.test(e)) fail(`a bad escape \\${e}`, i - 2);
        else value += e;
      }
      i++;
      out += JSON.stringify(value);
      // Keep the lines a continued string spanned.
      out += '\n'.repeat((text.slice(start, i).match(/\n/g) ?? []).length);
      continue;
    }
    if (/[0-9.+-]/.test(c)) {
      const num = /^[+-]?(?:Infinity|NaN|0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
      if (!num) fail(`unexpected \`${c}\``);
      const raw = num![0];
      const next = text[i + raw.length];
      if (next !== undefined && ID_PART.test(next)) fail(`a bad number ${raw}${next}`);
      const sign = raw[0] === '-' ? '-' : '';
      const body = raw.replace(/^[+-]/, '');
      if (body === 'Infinity') out += `${sign}.inf`;
      else if (body === 'NaN') out += '.nan';
      else if (/^0[xX]/.test(body)) out += sign + BigInt(body).toString();
      else out += sign + body.replace(/^\./, '0.').replace(/\.(?=[eE]|$)/, '.0');
      i += raw.length;
      continue;
    }
    if (ID_START.test(c) || c === '\\') {
      const start = i;
      let name = '';
      while (i < n && (ID_PART.test(text[i]!) || text[i] === '\\')) {
        if (text[i] === '\\') {
          const m = /^\\u([0-9a-fA-F]{4})/.exec(text.slice(i, i + 6));
          if (!m) fail('a bad escape in a key');
          name += String.fromCharCode(parseInt(m![1]!, 16));
          i += 6;
        } else name += text[i++];
      }
      if (text[skipBlank(text, i)] === ':') out += JSON.stringify(name);
      else if (name === 'true' || name === 'false' || name === 'null') out += name;
      else if (name === 'Infinity') out += '.inf';
      else if (name === 'NaN') out += '.nan';
      else fail(`unexpected \`${name}\``, start);
      continue;
    }
    fail(`unexpected \`${c}\``);
  }
  if (pendingComma) fail('a comma with nothing after it');
  return out;
}
