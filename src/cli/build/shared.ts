// What the `bkci build ...` commands share: build references, times, one build's line, waiting.
import type { Command } from 'commander';
import type { BuildkiteApi } from '../../api/builds.js';
import type { Build } from '../../api/types.js';
import { CheckFailed, UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { formatDuration } from '../../util/duration.js';
import { writeResult } from '../../util/output.js';
import type { CommonFlags } from '../api-command.js';

// A build number, or a build's web URL (which also names the org and pipeline).
export function parseBuildRef(arg: string, flags: CommonFlags): number {
  const url = /^https?:\/\/[^/]+\/([^/]+)\/([^/]+)\/builds\/(\d+)/.exec(arg);
  if (url) {
    flags.org ??= decodeURIComponent(url[1]!);
    flags.pipeline ??= decodeURIComponent(url[2]!);
    return Number(url[3]);
  }
  if (!/^\d+$/.test(arg) || Number(arg) < 1)
    throw new UsageError(`build ${JSON.stringify(arg)}: expected a build number or a build URL`, 'e.g. bkci build get 1234');
  return Number(arg);
}

// How long something ran (`12m`, `1h30m`), up to now while it runs; empty before it starts.
export function span(start: string | null | undefined, end: string | null | undefined, io: Io): string {
  if (!start) return '';
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : io.now().getTime();
  return Number.isNaN(a) || Number.isNaN(b) ? '' : formatDuration(b - a);
}

// A timestamp: "3m ago" on a terminal, ISO 8601 when piped.
export function when(ts: string | null | undefined, io: Io): string {
  if (!ts) return '';
  const t = Date.parse(ts);
  if (!io.stdoutIsTTY || Number.isNaN(t)) return ts;
  const ago = io.now().getTime() - t;
  return ago < 60_000 ? 'just now' : ago < 86_400_000 ? `${formatDuration(Math.floor(ago / 60_000) * 60_000)} ago` : `${Math.floor(ago / 86_400_000)}d ago`;
}

export function buildLine(b: Build): string {
  return `#${b.number} ${b.state}${b.web_url ? `  ${b.web_url}` : ''}\n`;
}

// A build on stdout: `#N state  url`, or the API's object with --json.
export function printBuild(io: Io, b: Build, json: boolean | undefined): void {
  writeResult(io, json ? 'json' : 'text', b, buildLine);
}

export interface WaitFlags extends CommonFlags {
  timeout?: string;
  failFast?: boolean;
}

export async function waitAndReport(api: BuildkiteApi, n: number, io: Io, flags: WaitFlags): Promise<void> {
  const [{ waitForBuild }, { parseDuration }, { progressOf }] = await Promise.all([
    import('../../api/wait.js'),
    import('../../util/duration.js'),
    import('../../api/builds.js'),
  ]);
  const timeoutMs = flags.timeout !== undefined ? parseDuration(flags.timeout, '--timeout') : undefined;
  const quiet = ['error', 'fatal', 'silent'].includes(io.log.level);
  const poll = io.env.BKCI_POLL_INTERVAL ? parseDuration(io.env.BKCI_POLL_INTERVAL, 'BKCI_POLL_INTERVAL') : undefined;
  const { build, verdict } = await waitForBuild(api, n, io, {
    timeoutMs,
    failFast: flags.failFast === true,
    spinner: io.stderrIsTTY && !quiet,
    firstIntervalMs: poll,
  });
  printBuild(io, build, flags.json);
  if (!verdict.ok) {
    const failed = progressOf(build).failed;
    throw new CheckFailed(
      `build #${build.number} ${verdict.reason}${failed.length ? `; failed jobs: ${failed.join(', ')}` : ''}`,
      `see the logs with \`bkci build logs ${build.number} --failed\``,
    );
  }
}

export function waitOptions(cmd: Command): Command {
  return cmd
    .option('--timeout <duration>', 'give up waiting after DURATION (30s, 10m, 1h30m); the build keeps running')
    .option('--fail-fast', 'stop waiting as soon as the build is failing');
}
