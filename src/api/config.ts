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
}

const TOKEN_HINT = 'create a token at https://buildkite.com/user/api-access-tokens and export BUILDKITE_API_TOKEN, or pass --token-file FILE';

export async function loadApiConfig(flags: ApiFlags, io: Io, need: { pipeline: boolean }): Promise<ApiConfig> {
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
  return { apiUrl, token, org, pipeline };
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
