// What the `bkci build ...` commands share: build references, times, one build's line, waiting.
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { Zod } from '../zod.js';
import type { BuildkiteApi } from '../../api/builds.js';
import type { Build } from '../../api/types.js';
import { CheckFailed } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { formatDuration, parseDuration } from '../../util/duration.js';
import { writeApiResult } from '../../util/output.js';
import { viaUsage } from '../command.js';

// A build as the user named it: its number, and the org and pipeline when given as a URL.
export interface BuildRef {
  number: number;
  org?: string;
  pipeline?: string;
}

// argParser for <build>: a build number, or a build's web URL (which also names org and pipeline).
export function buildRef(arg: string): BuildRef {
  const url = /^https?:\/\/[^/]+\/([^/]+)\/([^/]+)\/builds\/(\d+)(?:[/?#]|$)/.exec(arg);
  const digits = url ? url[3]! : arg;
  const n = Number(digits);
  if (!/^\d+$/.test(digits) || n < 1 || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a build number (1234) or a build URL (https://buildkite.com/ORG/PIPELINE/builds/1234)');
  return url ? { number: n, org: decodeURIComponent(url[1]!), pipeline: decodeURIComponent(url[2]!) } : { number: n };
}

export const buildRefShape = (z: Zod) => z.object({ number: z.number().int().positive(), org: z.string().optional(), pipeline: z.string().optional() });

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
export function printBuild(io: Io, b: Build, json: boolean): void {
  writeApiResult(io, json ? 'json' : 'text', b, buildLine);
}

// The waiting part of an input (build wait, submit --wait, retry --wait).
export interface WaitInput {
  timeoutMs?: number;
  failFast: boolean;
  json: boolean;
}

export const waitShape = (z: Zod) => ({ timeoutMs: z.number().positive().optional(), failFast: z.boolean() });

export function waitOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--timeout <duration>', 'give up waiting after DURATION (30s, 10m, 1h30m); the build keeps running').argParser(
        viaUsage((v) => parseDuration(v, '--timeout')),
      ),
    )
    .option('--fail-fast', 'stop waiting as soon as the build is failing');
}

export async function waitAndReport(api: BuildkiteApi, n: number, io: Io, input: WaitInput): Promise<void> {
  const [{ waitForBuild }, { progressOf }, { pollInterval }, { progressView }] = await Promise.all([
    import('../../api/wait.js'),
    import('../../api/builds.js'),
    import('../../api/config.js'),
    import('../progress.js'),
  ]);
  const view = progressView(io);
  const { build, verdict } = await waitForBuild(api, n, io, {
    timeoutMs: input.timeoutMs,
    failFast: input.failFast,
    onProgress: view.onProgress,
    firstIntervalMs: pollInterval(io.env),
  }).finally(view.close);
  printBuild(io, build, input.json);
  if (!verdict.ok) {
    const failed = progressOf(build).failed;
    throw new CheckFailed(
      `build #${build.number} ${verdict.reason}${failed.length ? `; failed jobs: ${failed.join(', ')}` : ''}`,
      `see the logs with \`bkci build logs ${build.number} --failed\``,
    );
  }
}
