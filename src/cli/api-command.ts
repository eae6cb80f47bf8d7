// What every API command shares (build ..., queue status): the API flags, their checked input and a
// client for one command. Only the commands that talk to the API import this file (the others must
// not reach undici).
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Zod } from './zod.js';
import type { BuildkiteApi } from '../api/builds.js';
import { UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { registerSecret } from '../util/redact.js';
import { envValue } from './command.js';
import { VERSION } from './version.js';

// The API flags as commander parsed them.
export interface ApiFlagValues {
  org?: string;
  pipeline?: string;
  apiUrl?: string;
  tokenFile?: string;
  token?: string;
  json?: boolean;
}

// The checked API part of a command's input: org and pipeline from the flag, else from a build URL,
// else BUILDKITE_ORGANIZATION_SLUG / BUILDKITE_PIPELINE_SLUG. The API URL and the token are read by
// src/api/config.ts (flag, then BUILDKITE_API_URL / BUILDKITE_API_TOKEN).
export interface ApiInput {
  org?: string;
  pipeline?: string;
  apiUrl?: string;
  tokenFile?: string;
  json: boolean;
}

const SLUG = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const apiShape = (z: Zod) => ({
  org: z.string().regex(SLUG, { error: 'an organization slug: letters, digits and ._-' }).optional(),
  pipeline: z.string().regex(SLUG, { error: 'a pipeline slug: letters, digits and ._-' }).optional(),
  apiUrl: z.string().optional(),
  tokenFile: z.string().min(1).optional(),
  json: z.boolean(),
});

// Options every API command takes. `--token` exists only to refuse it with the reason.
export function apiOptions(cmd: Command, json = true): Command {
  cmd
    .option('--org <slug>', 'organization slug (default: $BUILDKITE_ORGANIZATION_SLUG)')
    .option('--pipeline <slug>', 'pipeline slug (default: $BUILDKITE_PIPELINE_SLUG)')
    .option('--api-url <url>', 'REST API base URL (default: $BUILDKITE_API_URL or https://api.buildkite.com/v2)')
    .option('--token-file <file>', 'read the API token from FILE (default: $BUILDKITE_API_TOKEN)')
    .addOption(new Option('--token <token>').hideHelp());
  if (json) cmd.option('--json', 'print JSON');
  return cmd;
}

// The older name of the API flags (commands not yet on the checked-input pattern).
export type CommonFlags = ApiFlagValues;

// --token is refused (its value redacted from then on).
function refuseToken(flags: { token?: string }): void {
  if (flags.token !== undefined) {
    registerSecret(flags.token);
    throw new UsageError(
      '--token is not accepted: a token on the command line is visible to every user in `ps` and kept in shell history',
      'export BUILDKITE_API_TOKEN or pass --token-file FILE (mode 0600)',
    );
  }
}

// The API flags as input: --token refused, defaults filled.
export function apiInput(flags: ApiFlagValues, io: Io, from: { org?: string; pipeline?: string } = {}): ApiInput {
  refuseToken(flags);
  return {
    org: flags.org ?? from.org ?? envValue(io, 'BUILDKITE_ORGANIZATION_SLUG'),
    pipeline: flags.pipeline ?? from.pipeline ?? envValue(io, 'BUILDKITE_PIPELINE_SLUG'),
    apiUrl: flags.apiUrl,
    tokenFile: flags.tokenFile,
    json: flags.json === true,
  };
}

export async function withApi<T>(
  input: Omit<ApiInput, 'json'> & { token?: string },
  io: Io,
  needPipeline: boolean,
  fn: (api: BuildkiteApi) => Promise<T>,
): Promise<T> {
  refuseToken(input);
  const [{ loadApiConfig }, { ApiClient }, { BuildkiteApi }] = await Promise.all([
    import('../api/config.js'),
    import('../api/client.js'),
    import('../api/builds.js'),
  ]);
  const cfg = await loadApiConfig(input, io, { pipeline: needPipeline });
  const client = new ApiClient({
    apiUrl: cfg.apiUrl,
    token: cfg.token,
    io,
    userAgent: `bkci/${VERSION}${io.nodeVersion ? ` (node ${io.nodeVersion})` : ''}`,
    timeoutMs: cfg.timeoutMs,
  });
  try {
    return await fn(new BuildkiteApi(client, cfg, io));
  } finally {
    await client.close();
  }
}
