// How `bkci node teardown` stops the agents on a real host. The units have TimeoutStopSec=infinity
// (a stop lets the running job finish), so a plain `systemctl disable --now` could wait hours in
// silence. Instead the stops are queued (`--no-block`) and their progress is watched:
//  - the agents still finishing a job are named on stderr (again whenever that set changes, and
//    every minute);
//  - `--timeout D`: after D the remaining agents' jobs are cancelled (SIGQUIT to buildkite-agent,
//    its ungraceful stop: it cancels the job, which gets SIGTERM and the agent's cancel grace
//    period, then exits); whatever is still running a minute later is killed (SIGKILL);
//  - `--no-block`: the stops stay queued and teardown returns at once, naming the agents still
//    stopping (`node status` shows them `deactivating`); their files stay until they have stopped.
import type { Io } from '../util/io.js';
import { BkciError } from '../util/errors.js';
import { runTool, which } from './detect/tools.js';

export interface StopOptions {
  // Milliseconds to wait for running jobs before cancelling them; undefined: no limit.
  timeoutMs?: number;
  noBlock: boolean;
}

export interface StopResult {
  // Units still stopping when teardown returned (--no-block).
  stopping: string[];
  // Units whose job was cancelled after --timeout, and those killed after that.
  cancelled: string[];
  killed: string[];
}

// How often the units' states are read, how often a wait is said again, and how long a cancelled
// job may take before everything of its unit is killed.
export const POLL_MS = 2_000;
export const REPORT_EVERY_MS = 60_000;
export const CANCEL_GRACE_MS = 60_000;
// --no-block still waits this long for the units that stop at once (idle agents).
export const NO_BLOCK_SETTLE_MS = 5_000;

// Unit states in which the unit still has processes (a stop job may be running).
const BUSY = new Set(['active', 'activating', 'deactivating', 'reloading', 'refreshing']);

type StopIo = Pick<Io, 'env' | 'log' | 'now' | 'sleep'>;

async function systemctl(args: string[], io: StopIo): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const bin = (await which('systemctl', io.env)) ?? 'systemctl';
  const r = await runTool(bin, args, io, 60_000);
  return { ok: r.ok, stdout: r.stdout, stderr: r.stderr };
}

// The units that still have processes: `systemctl is-active` prints one state per unit, in order
// (and exits non-zero when one is not active, which is no error here).
export async function busyUnits(units: string[], io: StopIo): Promise<string[]> {
  if (!units.length) return [];
  const r = await systemctl(['is-active', ...units], io);
  const states = r.stdout.split('\n').map((s) => s.trim());
  return units.filter((_, i) => BUSY.has(states[i] ?? ''));
}

export const instanceOf = (unit: string) => /^bkci-agent@(.+)\.service$/.exec(unit)?.[1] ?? unit;
const names = (units: string[]) => units.map(instanceOf).join(', ');

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s % 3600 === 0 && s >= 3600) return `${s / 3600}h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60}min`;
  return `${s}s`;
}

export async function stopUnits(units: string[], opts: StopOptions, io: StopIo): Promise<StopResult> {
  const result: StopResult = { stopping: [], cancelled: [], killed: [] };
  if (!units.length) return result;
  const argv = ['disable', '--now', '--no-block', ...units];
  io.log.info({ cmd: `systemctl ${argv.join(' ')}` }, `running systemctl ${argv.join(' ')}`);
  const d = await systemctl(argv, io);
  if (!d.ok) throw new BkciError(`systemctl ${argv.join(' ')} failed: ${d.stderr.trim()}`, 'see the journal: journalctl -xe');
  let busy = await busyUnits(units, io);
  if (opts.noBlock) {
    // An idle agent stops within moments: a few seconds for those, then the rest is reported.
    const until = io.now().getTime() + NO_BLOCK_SETTLE_MS;
    while (busy.length && io.now().getTime() < until) {
      await io.sleep(500);
      busy = await busyUnits(busy, io);
    }
    result.stopping = busy;
    if (busy.length)
      io.log.warn(
        { stopping: busy },
        `--no-block: ${busy.length} agent${busy.length === 1 ? ' is' : 's are'} still finishing ${busy.length === 1 ? 'its job' : 'their jobs'} and will stop then: ${names(busy)}. Their files stay until they have stopped; bkci node status shows them deactivating; run bkci node teardown again afterwards to remove the files`,
      );
    return result;
  }
  const start = io.now().getTime();
  let said = '';
  let saidAt = 0;
  let cancelledAt: number | undefined;
  let killedAt: number | undefined;
  while (busy.length) {
    const now = io.now().getTime();
    const key = busy.join(' ');
    if (key !== said || now - saidAt >= REPORT_EVERY_MS) {
      const waited = now - start;
      io.log.info(
        { waiting: busy },
        killedAt !== undefined
          ? `waiting for the killed processes of ${names(busy)} to end`
          : cancelledAt !== undefined
            ? `waiting for the cancelled jobs of ${names(busy)} to end (killed ${formatDuration(Math.max(0, cancelledAt + CANCEL_GRACE_MS - now))} from now if still running)`
            : `waiting for ${busy.length} agent${busy.length === 1 ? '' : 's'} to finish ${busy.length === 1 ? 'its running job' : 'their running jobs'}: ${names(busy)}` +
              (waited ? ` (${formatDuration(waited)} so far)` : '') +
              (opts.timeoutMs !== undefined
                ? `; their jobs are cancelled at --timeout ${formatDuration(opts.timeoutMs)}`
                : '; no time limit: --timeout DURATION cancels the jobs after DURATION, --no-block returns at once and lets them finish'),
      );
      said = key;
      saidAt = now;
    }
    if (cancelledAt === undefined && opts.timeoutMs !== undefined && now - start >= opts.timeoutMs) {
      io.log.warn(
        { cancelling: busy },
        `--timeout ${formatDuration(opts.timeoutMs)} reached: cancelling the running jobs of ${names(busy)} (SIGQUIT to buildkite-agent: the job is cancelled and reported as such)`,
      );
      await systemctl(['kill', '--kill-whom=main', '--signal=SIGQUIT', ...busy], io);
      result.cancelled = busy;
      cancelledAt = now;
      said = '';
    } else if (killedAt !== undefined && now - killedAt >= CANCEL_GRACE_MS) {
      throw new BkciError(
        `${names(busy)} still ${busy.length === 1 ? 'has' : 'have'} processes ${formatDuration(now - killedAt)} after SIGKILL (a process stuck in the kernel?): their files are left in place`,
        'see systemctl status and journalctl -u for each; run bkci node teardown again once they have stopped',
      );
    } else if (killedAt === undefined && cancelledAt !== undefined && now - cancelledAt >= CANCEL_GRACE_MS) {
      io.log.warn(
        { killing: busy },
        `the cancelled jobs of ${names(busy)} did not end within ${formatDuration(CANCEL_GRACE_MS)}: killing every process of their units (SIGKILL)`,
      );
      await systemctl(['kill', '--signal=SIGKILL', ...busy], io);
      result.killed = busy;
      killedAt = now;
    }
    await io.sleep(POLL_MS);
    busy = await busyUnits(busy, io);
  }
  return result;
}
