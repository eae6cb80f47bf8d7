// Where the API is and who we are: the token (BUILDKITE_API_TOKEN or --token-file, never a flag
// value), organization, pipeline and API URL, from flags first, then Buildkite's own variables.
import { UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { readToken } from '../util/token.js';

export const DEFAULT_API_URL = 'https://api.buildkite.com/v2';

export interface ApiFlags {
  org?: string;
  pipeline?: string;
  apiUrl?: string;
  tokenFile?: string;
}

export interface ApiConfig {
  apiUrl: string;
  token: string;
  org: string;
  pipeline: string | undefined;
  // BKCI_HTTP_TIMEOUT in milliseconds (undefined: the client's default, 30 s).
  timeoutMs: number | undefined;
}

const TOKEN_HINT = 'create a token at https://buildkite.com/user/api-access-tokens and export BUILDKITE_API_TOKEN, or pass --token-file FILE';

export async function loadApiConfig(flags: ApiFlags, io: Io, need: { pipeline: boolean }): Promise<ApiConfig> {
  // Settings first: a bad one is exit 2 at once, before the token is even read.
  const timeoutMs = httpTimeout(io.env);
  const token = await readToken(
    {
      file: flags.tokenFile,
      variable: 'BUILDKITE_API_TOKEN',
      missing: 'no API token: BUILDKITE_API_TOKEN is not set and no --token-file was given',
      hint: TOKEN_HINT,
      fileHint: TOKEN_HINT,
      warnIfReadable: true,
    },
    io,
  );
  checkToken(token, flags.tokenFile === undefined ? 'BUILDKITE_API_TOKEN' : `--token-file ${flags.tokenFile}`);
  const org = flags.org ?? nonEmpty(io.env.BUILDKITE_ORGANIZATION_SLUG);
  if (!org)
    throw new UsageError(
      'no organization: pass --org SLUG or set BUILDKITE_ORGANIZATION_SLUG',
      'the slug is the part after buildkite.com/ in your pipeline URLs',
    );
  const pipeline = flags.pipeline ?? nonEmpty(io.env.BUILDKITE_PIPELINE_SLUG);
  if (need.pipeline && !pipeline)
    throw new UsageError(
      'no pipeline: pass --pipeline SLUG or set BUILDKITE_PIPELINE_SLUG',
      `the slug is the part after buildkite.com/${org}/ in the pipeline's URL`,
    );
  const apiUrl = flags.apiUrl ?? nonEmpty(io.env.BUILDKITE_API_URL) ?? DEFAULT_API_URL;
  let parsed: URL;
  try {
    parsed = new URL(apiUrl);
  } catch {
    throw new UsageError(`${flags.apiUrl ? '--api-url' : 'BUILDKITE_API_URL'} ${JSON.stringify(apiUrl)} is not a URL`, `the default is ${DEFAULT_API_URL}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new UsageError(`--api-url ${apiUrl}: only http(s) URLs are supported`);
  if (parsed.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) {
    io.log.warn({ apiUrl: parsed.origin }, 'the API URL is plain http: the token travels unencrypted');
  }
  return { apiUrl, token, org, pipeline, timeoutMs };
}

// A token is one word of printable characters (the ends are trimmed when it is read). A line
// break, tab, space or control character inside is a paste gone wrong, and cannot go in an HTTP
// header: said at once (exit 2), naming where it sits but never showing the token.
export function checkToken(token: string, source: string): void {
  const i = token.search(/[\s\u0000-\u001f\u007f-\u009f]/u);
  if (i < 0) return;
  const c = token.charCodeAt(i);
  const what =
    c === 10 || c === 13
      ? 'a line break'
      : c === 9
        ? 'a tab'
        : /\s/u.test(token[i]!)
          ? 'a space'
          : `a control character (U+${c.toString(16).toUpperCase().padStart(4, '0')})`;
  throw new UsageError(
    `the API token from ${source} contains ${what} at character ${i + 1} of ${token.length}; a Buildkite API token is one word`,
    source.startsWith('--token-file')
      ? 'keep only the token in the file (or one NAME=token line)'
      : 'export the token alone, e.g. BUILDKITE_API_TOKEN="$(cat token-file)"',
  );
}

// BKCI_HTTP_TIMEOUT: seconds (`30`, `2.5`) or a duration (`30s`, `2m`), from 0.1 s to 1 h.
export function httpTimeout(env: Io['env']): number | undefined {
  const text = env.BKCI_HTTP_TIMEOUT;
  if (text === undefined || text.trim() === '') return undefined;
  const t = text.trim();
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(t);
  const ms = m ? Number(m[1]) * units[m[2] ?? 's']! : NaN;
  if (!Number.isFinite(ms) || ms < 100 || ms > 3_600_000)
    throw new UsageError(
      `BKCI_HTTP_TIMEOUT=${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)}: expected a number of seconds from 0.1 to 3600 (or a duration like 30s, 2m)`,
      'unset it for the default, 30 seconds',
    );
  return Math.round(ms);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

// BKCI_POLL_INTERVAL: the first wait between polls of `build wait` (`2s`, `500ms`, `1m`), 10 ms to 1 h.
export function pollInterval(env: Io['env']): number | undefined {
  const text = env.BKCI_POLL_INTERVAL;
  if (text === undefined || text.trim() === '') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']! : NaN;
  if (!Number.isFinite(ms) || ms < 10 || ms > 3_600_000)
    throw new UsageError(
      `BKCI_POLL_INTERVAL=${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)}: expected a duration from 10ms to 1h (like 2s, 500ms)`,
      'unset it for the default, 2s',
    );
  return Math.round(ms);
}

// `--concurrency N`: a whole number from 1 to 64.
export function parseConcurrency(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--concurrency ${JSON.stringify(text)}: expected a whole number from 1 to 64`);
  return n;
}
