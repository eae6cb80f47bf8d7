// A batch as YAML text for `buildkite-agent pipeline upload`: block mappings and lists, and scalars
// that every YAML reader takes back as the same value. A string is written plain only when it is
// made of ordinary characters and could not be read as another type under YAML 1.1 or 1.2
// (yes/no/on/off, numbers with leading zeros, dates, 0o17, .inf, ~); anything else is written as
// a double-quoted scalar with JSON's escapes (which YAML's double-quoted style shares). Written by
// hand: npm `yaml` took ~350 ms for a 2,000-step pipeline, this takes a few.
const LOOKS_TYPED =
  /^(?:[-+.]?\d|[-+]?\.(?:inf|Inf|INF)$|\.(?:nan|NaN|NAN)$|(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$)/;
const PLAIN = /^[A-Za-z0-9_./$][A-Za-z0-9_./$ :=@+,()'"*&!%-]*$/;

function scalar(s: string): string {
  if (PLAIN.test(s) && !LOOKS_TYPED.test(s) && !s.endsWith(' ') && !s.endsWith(':') && !s.includes(': ') && !s.includes(' #') && !/[&!*]/.test(s[0]!)) return s;
  return JSON.stringify(s);
}

function inline(v: unknown): string | undefined {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isNaN(v) ? '.nan' : v === Infinity ? '.inf' : v === -Infinity ? '-.inf' : String(v);
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return scalar(v);
  if (Array.isArray(v) && v.length === 0) return '[]';
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) return '{}';
  return undefined;
}

function emit(v: unknown, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = inline(item);
      if (s !== undefined) out.push(`${indent}- ${s}\n`);
      else {
        // The item's first line goes after the dash; the rest is indented under it.
        const sub: string[] = [];
        emit(item, `${indent}  `, sub);
        out.push(`${indent}- ${sub.join('').slice(indent.length + 2)}`);
      }
    }
    return;
  }
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    const s = inline(val);
    if (s !== undefined) out.push(`${indent}${scalar(k)}: ${s}\n`);
    else {
      out.push(`${indent}${scalar(k)}:\n`);
      emit(val, `${indent}  `, out);
    }
  }
}

export function toYaml(value: unknown): string {
  const s = inline(value);
  if (s !== undefined) return `${s}\n`;
  const out: string[] = [];
  emit(value, '', out);
  return out.join('');
}
