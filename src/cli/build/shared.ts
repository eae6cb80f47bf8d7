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
    return buildNumber(url[3]!);
  }
  if (!/^\d+$/.test(arg)) throw new UsageError(`build ${JSON.stringify(arg.slice(0, 80))}: expected a build number or a build URL`, 'e.g. bkci build get 1234');
  return buildNumber(arg);
}

// Digits as a build number: 1 up to 2^53-1 (past that a number is only approximate:
// 99999999999999999999999 would be requested as builds/1e+23).
function buildNumber(digits: string): number {
  const n = Number(digits);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`build ${digits.slice(0, 80)}: not a build number (a whole number from 1 to ${Number.MAX_SAFE_INTEGER})`, 'e.g. bkci build get 1234');
  return n;
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
  const [{ waitForBuild }, { parseDuration }, { progressOf }, { pollInterval }, { progressView }] = await Promise.all([
    import('../../api/wait.js'),
    import('../../util/duration.js'),
    import('../../api/builds.js'),
    import('../../api/config.js'),
    import('../progress.js'),
  ]);
  const timeoutMs = flags.timeout !== undefined ? parseDuration(flags.timeout, '--timeout') : undefined;
  const view = progressView(io);
  const { build, verdict } = await waitForBuild(api, n, io, {
    timeoutMs,
    failFast: flags.failFast === true,
    onProgress: view.onProgress,
    firstIntervalMs: pollInterval(io.env),
  }).finally(view.close);
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
