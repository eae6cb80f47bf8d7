// Where the API is and who we are: the token (BUILDKITE_API_TOKEN or --token-file, never a flag
// value), organization, pipeline and API URL, from flags first, then Buildkite's own variables.
import { InputError, UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { registerSecret } from '../util/redact.js';

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
}

const TOKEN_HINT = 'create a token at https://buildkite.com/user/api-access-tokens and export BUILDKITE_API_TOKEN, or pass --token-file FILE';

export async function loadApiConfig(flags: ApiFlags, io: Io, need: { pipeline: boolean }): Promise<ApiConfig> {
  const token = await readToken(flags, io);
  const org = flags.org ?? nonEmpty(io.env.BUILDKITE_ORGANIZATION_SLUG);
  if (!org) throw new UsageError('no organization: pass --org SLUG or set BUILDKITE_ORGANIZATION_SLUG', 'the slug is the part after buildkite.com/ in your pipeline URLs');
  const pipeline = flags.pipeline ?? nonEmpty(io.env.BUILDKITE_PIPELINE_SLUG);
  if (need.pipeline && !pipeline) throw new UsageError('no pipeline: pass --pipeline SLUG or set BUILDKITE_PIPELINE_SLUG', `the slug is the part after buildkite.com/${org}/ in the pipeline's URL`);
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
  return { apiUrl, token, org, pipeline };
}

async function readToken(flags: ApiFlags, io: Io): Promise<string> {
  if (flags.tokenFile !== undefined) {
    const { readFile, stat } = await import('node:fs/promises');
    const { resolve } = await import('node:path');
    const path = resolve(io.cwd, flags.tokenFile);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new InputError(`--token-file ${flags.tokenFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, TOKEN_HINT);
    }
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) io.log.warn({ file: flags.tokenFile, mode: (st.mode & 0o777).toString(8) }, 'the token file is readable by other users; chmod 600 it');
    const token = text.replace(/^\s*BUILDKITE_API_TOKEN=/, '').trim();
    if (!token) throw new InputError(`--token-file ${flags.tokenFile} is empty`, TOKEN_HINT);
    registerSecret(token);
    return token;
  }
  const token = nonEmpty(io.env.BUILDKITE_API_TOKEN?.trim());
  if (!token) throw new UsageError('no API token: BUILDKITE_API_TOKEN is not set and no --token-file was given', TOKEN_HINT);
  registerSecret(token);
  return token;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
