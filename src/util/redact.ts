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
  /\bbkua_[A-Za-z0-9]{8,}\b/g, // Buildkite user API tokens
  /\bbkct_[A-Za-z0-9]{8,}\b/g, // cluster agent tokens
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
