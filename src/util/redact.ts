// Removes secrets from any text bkci prints or logs: registered secret values (tokens read from
// the environment or a token file) and anything shaped like a Buildkite token or bearer header.
// Only values are replaced: a key is a key only where it stands alone (not the end of a path or a
// flag such as `/root/agent-token` or `--token-file`), and after `key: ` only a value shaped like
// a secret goes (not the next word of a sentence).
const secrets = new Set<string>();

// Registers a secret value so every later message has it replaced.
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) secrets.add(value);
}

const NAME = String.raw`(?:[A-Za-z0-9_]*_)?(?:token|password|secret|passwd)`;
// `--token=x` and `agent-token=x` are keys with a value; `/root/agent-token: cannot ...` is not.
const KEY = String.raw`(?<![\w/.])${NAME}`;
const STRICT_KEY = String.raw`(?<![\w/.\-])${NAME}`;
const PATTERNS: RegExp[] = [
  // Buildkite's prefixed tokens: user API (bkua_), agent session (bkaa_), agent job (bkaj_),
  // cluster agent registration (bkct_). https://buildkite.com/docs/platform/security/tokens
  /\bbk(?:ua|aa|aj|ct)_[A-Za-z0-9]{8,}\b/g,
  /(Bearer\s+)[A-Za-z0-9._~+/=-]{6,}/gi,
  // key=value, "key": "value", key="value": whatever the value is.
  new RegExp(String.raw`(${KEY}(?:=["']?|["']\s*[:=]\s*["']|\s*=\s*["']))[^\s"',}]{6,}`, 'gi'),
  // key: value (a YAML or log form): only a value that looks like a secret (letters and digits, or long).
  new RegExp(String.raw`(${STRICT_KEY}["']?:\s*)(?=[^\s"',}]*(?:[A-Za-z][^\s"',}]*\d|\d[^\s"',}]*[A-Za-z])|[^\s"',}]{24,})[^\s"',}]{8,}`, 'gi'),
];

export const REDACTED = '[REDACTED]';

// The name of one of Buildkite's or bkci's environment variables (not a value: kept).
const ENV_NAME = /^(?:BUILDKITE|BKCI)_[A-Z0-9_]+$/;

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(REDACTED);
  for (const re of PATTERNS)
    out = out.replace(re, (m, prefix?: unknown) => {
      if (typeof prefix !== 'string') return REDACTED;
      // "token: BUILDKITE_API_TOKEN is not set" names a variable; it is not one's value.
      return ENV_NAME.test(m.slice(prefix.length)) ? m : prefix + REDACTED;
    });
  return out;
}

// A key whose value is a secret whatever it looks like (`token`, `HF_TOKEN`, `db_password`).
const SECRET_KEY = new RegExp(String.raw`^${NAME}$`, 'i');

// Data from elsewhere (an API answer) with every string redacted, and the string value of a
// secret-named key (`{"HF_TOKEN": "..."}`) replaced whole: the same shape, safe to print as JSON.
export function redactData<T>(data: T): T {
  const walk = (v: unknown, key?: string): unknown => {
    if (typeof v === 'string') return key !== undefined && v !== '' && SECRET_KEY.test(key) && !ENV_NAME.test(v) ? REDACTED : redact(v);
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(data) as T;
}

// Where redact() would replace something in `text`: [start, end) of each registered secret and
// each match of a pattern (matches may overlap).
function secretSpans(text: string): [number, number][] {
  const spans: [number, number][] = [];
  for (const s of secrets) for (let i = text.indexOf(s); i >= 0; i = text.indexOf(s, i + 1)) spans.push([i, i + s.length]);
  for (const re of PATTERNS) {
    const g = new RegExp(re.source, re.flags);
    for (let m = g.exec(text); m; m = g.exec(text)) {
      spans.push([m.index, m.index + m[0].length]);
      if (m[0].length === 0) g.lastIndex++;
    }
  }
  return spans;
}

// The longest secret (key and value together: `Authorization: Bearer ...`, `HF_TOKEN=...`) that a
// stream redactor finds wherever the text is cut. Real tokens are far shorter (Buildkite's are 40
// characters); a registered secret longer than this raises it.
export const MAX_SECRET_CHARS = 4096;

// Redacts a text that arrives in parts (a job log), each complete line as redact() does, so a
// secret split between two parts is still found. A line that has not ended yet is held only up to
// twice the longest secret: past that, all of it but a tail of that length goes on, cut where no
// secret (as far as it has arrived) spans the cut. So a line of any length is redacted as a whole
// would be, for secrets up to MAX_SECRET_CHARS, in memory bounded by that size (not the line's).
export function streamRedactor(): { part(text: string): string; end(): string } {
  let held = '';
  return {
    part(text) {
      const all = held + text;
      const lines = all.lastIndexOf('\n') + 1;
      let rest = all.slice(lines);
      let out = lines === 0 ? '' : redact(all.slice(0, lines));
      let tail = MAX_SECRET_CHARS;
      for (const s of secrets) tail = Math.max(tail, s.length);
      if (rest.length > 2 * tail) {
        const first = rest.length - tail;
        let cut = first;
        // Move the cut back to the start of any secret that spans it, until none does (a secret
        // reaching from the start of the held text past the cut is longer than any handled: the
        // first cut stands, and its start is redacted as the part it is).
        const spans = secretSpans(rest);
        for (let moved = true; moved && cut > 0;) {
          moved = false;
          for (const [a, b] of spans)
            if (a < cut && cut < b) {
              cut = a;
              moved = true;
            }
        }
        if (cut === 0) cut = first;
        // Never between the two halves of a character outside the BMP (an emoji).
        const c = rest.charCodeAt(cut - 1);
        if (c >= 0xd800 && c <= 0xdbff) cut--;
        out += redact(rest.slice(0, cut));
        rest = rest.slice(cut);
      }
      held = rest;
      return out;
    },
    end() {
      const rest = held;
      held = '';
      return redact(rest);
    },
  };
}
