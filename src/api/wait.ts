// Polls a build until it is finished for waiting (see judgeBuild), with a growing interval, and
// reports progress on stderr: a redrawn spinner line on a terminal, a log line per change otherwise.
import { CheckFailed } from '../util/errors.js';
import { formatDuration } from '../util/duration.js';
import type { Io } from '../util/io.js';
import { judgeBuild, progressOf, type BuildkiteApi, type Verdict } from './builds.js';
import { ApiError, NetworkError } from './client.js';
import type { Build } from './types.js';

// Polls in a row that may fail (after the client's own retries) before `wait` gives up.
const MAX_POLL_FAILURES = 10;

export interface WaitOptions {
  timeoutMs?: number;
  failFast: boolean;
  firstIntervalMs?: number;
  maxIntervalMs?: number;
  spinner: boolean;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

// Next poll interval: grows by half each time up to the cap.
export function nextInterval(current: number, max: number): number {
  return Math.min(max, Math.round(current * 1.5));
}

export async function waitForBuild(api: BuildkiteApi, n: number, io: Io, opts: WaitOptions): Promise<{ build: Build; verdict: Verdict }> {
  const start = io.now().getTime();
  const deadline = opts.timeoutMs === undefined ? Infinity : start + opts.timeoutMs;
  const maxInterval = opts.maxIntervalMs ?? 30_000;
  let interval = opts.firstIntervalMs ?? 2_000;
  let lastLine = '';
  let frame = 0;
  const clear = () => {
    if (opts.spinner && lastLine) io.stderr.write('\r\u001b[K');
  };
  let failures = 0;
  let readOnce = false;
  try {
    for (;;) {
      let build: Build;
      try {
        build = await api.getBuild(n);
        failures = 0;
        readOnce = true;
      } catch (err) {
        // An API outage during a long wait is waited out (the client has already retried), and
        // once the build has been read, so is an answer that makes no sense (a proxy's error
        // page); a refusal (4xx) or too many failures in a row ends the wait.
        const transient =
          err instanceof NetworkError || (err instanceof ApiError && (err.status >= 500 || err.status === 429 || (readOnce && err.status < 400)));
        if (!transient || ++failures >= MAX_POLL_FAILURES || io.now().getTime() >= deadline) throw err;
        io.log.warn({ build: n, failures }, `cannot read build #${n} (${(err as Error).message}); still waiting`);
        await io.sleep(Math.min(maxInterval, Math.max(0, deadline - io.now().getTime())));
        continue;
      }
      const verdict = judgeBuild(build, opts.failFast);
      const p = progressOf(build);
      const elapsed = formatDuration(io.now().getTime() - start);
      const line = `build #${build.number} ${build.state}: ${p.done}/${p.total} jobs done${p.running.length ? `; running: ${p.running.slice(0, 4).join(', ')}${p.running.length > 4 ? ` and ${p.running.length - 4} more` : ''}` : ''}${p.failed.length ? `; failed: ${p.failed.join(', ')}` : ''}`;
      if (opts.spinner) {
        io.stderr.write(`\r\u001b[K${FRAMES[frame++ % FRAMES.length]} ${line} (${elapsed})`);
        lastLine = line;
      } else if (line !== lastLine) {
        io.log.info({ build: build.number, state: build.state, done: p.done, total: p.total, running: p.running.length, elapsed }, line);
        lastLine = line;
      }
      if (verdict.done) {
        clear();
        return { build, verdict };
      }
      const now = io.now().getTime();
      if (now >= deadline) {
        clear();
        throw new CheckFailed(
          `timed out after ${formatDuration(now - start)} waiting for build #${build.number} (still ${build.state}, ${p.done}/${p.total} jobs done)`,
          `the build keeps running and holding its agents: cancel it with \`bkci build cancel ${build.number}\` or wait again with \`bkci build wait ${build.number}\``,
        );
      }
      await io.sleep(Math.min(interval, deadline - now));
      interval = nextInterval(interval, maxInterval);
    }
  } catch (err) {
    clear();
    throw err;
  }
}
