// What every API command shares (build ..., queue status): the API flags and a client for one command.
// Only the commands that talk to the API import this file (the others must not reach undici).
import type { Command } from 'commander';
import { Option } from 'commander';
import type { BuildkiteApi } from '../api/builds.js';
import type { ApiFlags } from '../api/config.js';
import { UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { registerSecret } from '../util/redact.js';
import { VERSION } from './version.js';

export interface CommonFlags extends ApiFlags {
  json?: boolean;
  token?: string;
}

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

export async function withApi<T>(flags: CommonFlags, io: Io, needPipeline: boolean, fn: (api: BuildkiteApi) => Promise<T>): Promise<T> {
  if (flags.token !== undefined) {
    registerSecret(flags.token);
    throw new UsageError(
      '--token is not accepted: a token on the command line is visible to every user in `ps` and kept in shell history',
      'export BUILDKITE_API_TOKEN or pass --token-file FILE (mode 0600)',
    );
  }
  const [{ loadApiConfig }, { ApiClient }, { BuildkiteApi }] = await Promise.all([
    import('../api/config.js'),
    import('../api/client.js'),
    import('../api/builds.js'),
  ]);
  const cfg = await loadApiConfig(flags, io, { pipeline: needPipeline });
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

export function printJson(io: Io, data: unknown): void {
  io.stdout.write(JSON.stringify(data, null, 2) + '\n');
}
