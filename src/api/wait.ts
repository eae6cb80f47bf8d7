// Polls a build until it is finished for waiting (see judgeBuild), with a growing interval. What
// happens is reported through `onProgress` (src/cli renders it: a spinner on a terminal, log lines
// otherwise); nothing here writes to a stream. `--timeout` bounds everything, the client's own
// retries included; io.signal (Ctrl-C) stops at once.
import { CheckFailed, Interrupted } from '../util/errors.js';
import { formatDuration } from '../util/duration.js';
import type { Io } from '../util/io.js';
import { judgeBuild, progressOf, type BuildkiteApi, type Progress, type Verdict } from './builds.js';
import { ApiError, NetworkError } from './client.js';
import type { Build } from './types.js';

// Polls in a row that may fail (after the client's own retries) before `wait` gives up.
export const MAX_POLL_FAILURES = 10;

export type WaitEvent =
  // The build as last read, and a one-line description of it.
  | { kind: 'progress'; build: Build; progress: Progress; elapsedMs: number; line: string }
  // The build could not be read; the wait goes on (failures of MAX_POLL_FAILURES in a row).
  | { kind: 'retrying'; build: number; reason: string; failures: number; nextInMs: number; remainingMs?: number; line: string };

export interface WaitOptions {
  timeoutMs?: number;
  failFast: boolean;
  firstIntervalMs?: number;
  maxIntervalMs?: number;
  onProgress?: (e: WaitEvent) => void;
}

// Next poll interval: grows by half each time up to the cap.
export function nextInterval(current: number, max: number): number {
  return Math.min(max, Math.round(current * 1.5));
}

// The one-line description of a build in progress.
export function progressLine(build: Build, p: Progress): string {
  const running = p.running.length ? `; running: ${p.running.slice(0, 4).join(', ')}${p.running.length > 4 ? ` and ${p.running.length - 4} more` : ''}` : '';
  const failed = p.failed.length ? `; failed: ${p.failed.join(', ')}` : '';
  return `build #${build.number} ${build.state}: ${p.done}/${p.total} jobs done${running}${failed}`;
}

export async function waitForBuild(api: BuildkiteApi, n: number, io: Io, opts: WaitOptions): Promise<{ build: Build; verdict: Verdict }> {
  const start = io.now().getTime();
  const deadline = opts.timeoutMs === undefined ? undefined : start + opts.timeoutMs;
  const maxInterval = opts.maxIntervalMs ?? 30_000;
  let interval = opts.firstIntervalMs ?? 2_000;
  let failures = 0;
  let readOnce = false;
  const report = opts.onProgress ?? (() => undefined);
  const sleep = async (ms: number) => {
    try {
      await io.sleep(ms, io.signal);
    } catch (err) {
      throw stopped(io, n) ?? err;
    }
  };
  const timedOut = (why: string) =>
    new CheckFailed(
      `timed out after ${formatDuration(io.now().getTime() - start)} waiting for build #${n}${why}`,
      `the build keeps running and holding its agents: cancel it with \`bkci build cancel ${n}\` or wait again with \`bkci build wait ${n}\``,
    );
  for (;;) {
    let build: Build;
    try {
      build = await api.getBuild(n, { deadline });
      failures = 0;
      readOnce = true;
    } catch (err) {
      const stop = stopped(io, n);
      if (stop) throw stop;
      // An API outage during a long wait is waited out (the client has already retried), and
      // once the build has been read, so is an answer that makes no sense (a proxy's error
      // page); a refusal (4xx) or too many failures in a row ends the wait.
      const transient = err instanceof NetworkError || (err instanceof ApiError && (err.status >= 500 || err.status === 429 || (readOnce && err.status < 400)));
      if (!transient) throw err;
      const now = io.now().getTime();
      if (deadline !== undefined && now >= deadline) throw timedOut(`: it could not be read (${(err as Error).message})`);
      if (++failures >= MAX_POLL_FAILURES) throw err;
      const nextInMs = Math.min(maxInterval, deadline === undefined ? Infinity : deadline - now);
      const remainingMs = deadline === undefined ? undefined : deadline - now;
      report({
        kind: 'retrying',
        build: n,
        reason: (err as Error).message,
        failures,
        nextInMs,
        remainingMs,
        line: `cannot read build #${n} (${(err as Error).message}); still waiting for it to finish: try ${failures + 1} of ${MAX_POLL_FAILURES} in ${formatDuration(nextInMs)}${remainingMs === undefined ? '' : `, ${formatDuration(remainingMs)} left of --timeout`}`,
      });
      await sleep(nextInMs);
      continue;
    }
    const verdict = judgeBuild(build, opts.failFast);
    const p = progressOf(build);
    report({ kind: 'progress', build, progress: p, elapsedMs: io.now().getTime() - start, line: progressLine(build, p) });
    if (verdict.done) return { build, verdict };
    const now = io.now().getTime();
    if (deadline !== undefined && now >= deadline) throw timedOut(` (still ${build.state}, ${p.done}/${p.total} jobs done)`);
    await sleep(Math.min(interval, deadline === undefined ? Infinity : deadline - now));
    interval = nextInterval(interval, maxInterval);
  }
}

// The Interrupted error to end a wait with when io.signal has fired.
function stopped(io: Io, n: number): Interrupted | undefined {
  if (!io.signal?.aborted) return undefined;
  const r: unknown = io.signal.reason;
  return new Interrupted(r instanceof Interrupted && r.exitCode === 143 ? 'SIGTERM' : 'SIGINT', `waiting for build #${n} (the build keeps running)`);
}
