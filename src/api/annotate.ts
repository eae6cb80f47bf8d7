// Posts markdown as a build annotation through the agent on this host (inside a job).
import { BkciError } from '../util/errors.js';
import type { Io } from '../util/io.js';

export async function annotate(markdown: string, style: 'success' | 'error' | 'info' | 'warning', io: Io): Promise<void> {
  const { execa } = await import('execa');
  // The agent uses its own job token (BUILDKITE_AGENT_ACCESS_TOKEN); the API token stays here.
  const { BUILDKITE_API_TOKEN: _apiToken, ...env } = io.env;
  const r = await execa('buildkite-agent', ['annotate', '--style', style, '--context', 'bkci-summary'], {
    input: markdown,
    env: env as Record<string, string>,
    extendEnv: false,
    reject: false,
    cwd: io.cwd,
  });
  if (r.failed) {
    const why = (r as { code?: string }).code === 'ENOENT' ? 'buildkite-agent is not on PATH' : `exit ${r.exitCode}: ${String(r.stderr).trim()}`;
    throw new BkciError(`buildkite-agent annotate failed (${why})`, 'run --annotate inside a Buildkite job, where the agent is installed');
  }
  io.log.info({ style }, 'posted the summary as a build annotation');
}
