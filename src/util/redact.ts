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

// Redacts a text that arrives in parts (a job log): each complete line as redact() does, so a
// token split between two parts is still found. A line is held until its end arrives, up to
// HOLD characters; past that the text before the last character a token cannot contain goes on.
const HOLD = 64 * 1024;
export function streamRedactor(): { part(text: string): string; end(): string } {
  let held = '';
  return {
    part(text) {
      const all = held + text;
      let cut = all.lastIndexOf('\n') + 1;
      if (cut === 0 && all.length > HOLD) {
        const m = /[^A-Za-z0-9_=]+[A-Za-z0-9_=]*$/.exec(all);
        cut = m ? m.index + 1 : all.length;
      }
      held = all.slice(cut);
      return cut === 0 ? '' : redact(all.slice(0, cut));
    },
    end() {
      const rest = held;
      held = '';
      return redact(rest);
    },
  };
}
