// What the readers bkci stands in for refuse before they parse anything: bytes that are not UTF-8
// (go-yaml for a pipeline, minijinja-cli for a template or DATA file: Rust strings are UTF-8) and,
// in YAML, characters outside YAML's printable set (go-yaml's and libyaml's reader: "control
// characters are not allowed", for the whole file). Both are located as line:col (UTF-16 columns,
// as every other position bkci reports).

export interface TextPlace {
  line: number;
  col: number;
}

const STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function placeOf(text: string, index: number): TextPlace {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, col: index - lineStart + 1 };
}

// The length of the valid UTF-8 sequence at `i`, or 0 when the bytes there are not one
// (overlong forms, surrogates and values past U+10FFFF included, as WHATWG's decoder judges).
function sequenceAt(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// The text of `bytes`, or where its first byte that is not UTF-8 is. A leading BOM is kept, as
// Buffer#toString keeps it (the YAML and template readers skip it themselves).
export function decodeUtf8(bytes: Uint8Array): { text: string } | { invalid: TextPlace & { byte: number } } {
  try {
    return { text: STRICT.decode(bytes) };
  } catch {
    let i = 0;
    while (i < bytes.length) {
      const n = sequenceAt(bytes, i);
      if (n === 0) break;
      i += n;
    }
    const before = STRICT.decode(bytes.subarray(0, i));
    return { invalid: { ...placeOf(before, before.length), byte: bytes[i] ?? 0 } };
  }
}

export function invalidUtf8Message(byte: number, what: string, reader: string): string {
  return `the ${what} is not UTF-8 text: byte 0x${byte.toString(16).padStart(2, '0').toUpperCase()} here starts no UTF-8 character (${reader} refuses the file): save it as UTF-8`;
}

// YAML's printable characters, as go-yaml's and libyaml's readers allow them: tab, LF, CR,
// U+0020-U+007E, U+0085, U+00A0-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF. Anything else (NUL, other
// C0 and C1 controls, DEL, U+FFFE/U+FFFF, a lone surrogate) fails the whole file.
const NOT_PRINTABLE = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function firstNonPrintable(text: string): (TextPlace & { code: number }) | undefined {
  const m = NOT_PRINTABLE.exec(text);
  if (!m) return undefined;
  return { ...placeOf(text, m.index), code: m[0].charCodeAt(0) };
}

export function nonPrintableMessage(code: number, reader: string): string {
  const u = `U+${code.toString(16).padStart(4, '0').toUpperCase()}`;
  const what = code >= 0xd800 && code <= 0xdfff ? `a lone surrogate (${u})` : `the control character ${u}`;
  const escape = code >= 0xd800 && code <= 0xdfff ? 'write the whole character' : `write it as the escape "\\u${u.slice(2)}" inside a double-quoted string`;
  return `${what} is not allowed in YAML (${reader} refuses the whole file): remove it, or ${escape}`;
}
