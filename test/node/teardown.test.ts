// `bkci node teardown` on a host with systemd (stand-in systemctl): it says which agents it waits
// for, `--timeout` cancels the jobs after the limit, `--no-block` returns at once and leaves the
// files of agents still finishing a job.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Io } from '../../src/util/io.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, standInAgent } from './helpers.js';

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const agentBin = standInAgent('3.133.1');

async function stagedSetup(): Promise<string> {
  const root = tmp('bkci-root-');
  const r = await runBkci(['node', 'setup', '--queue', 'q', '--host-root', HOSTS.l40s, '--root', root, '--agent-bin', agentBin], {
    env: hostEnv(HOSTS.l40s, { BUILDKITE_AGENT_TOKEN: 'bkat_teardowntoken' }),
  });
  expect(r.code, r.stderr).toBe(0);
  return root;
}

// A stand-in systemctl: `is-active` answers `deactivating` for a unit while its file busy-<unit>
// holds a count above zero (each answer counts down), else `inactive`; `kill --signal=SIGQUIT`
// leaves the unit busy for `$QUIT_POLLS` more answers. Every call is logged.
function standInSystemctl(): { bin: string; log: string; busy: (unit: string, polls: number) => void } {
  const bin = tmp('bkci-sysbin-');
  const log = join(bin, 'calls.log');
  writeFileSync(
    join(bin, 'systemctl'),
    `#!/bin/sh
echo "systemctl $*" >> ${log}
d=${bin}
case "$1" in
  is-active)
    shift
    for u in "$@"; do
      n=$(cat "$d/busy-$u" 2>/dev/null || echo 0)
      if [ "$n" -gt 0 ]; then echo deactivating; echo $((n - 1)) > "$d/busy-$u"; else echo inactive; fi
    done
    exit 3 ;;
  kill)
    case "$*" in *SIGQUIT*) for u in "$@"; do case "$u" in bkci-*) [ -f "$d/busy-$u" ] && echo "\${QUIT_POLLS:-1}" > "$d/busy-$u" ;; esac; done ;; esac
    exit 0 ;;
esac
exit 0
`,
    { mode: 0o755 },
  );
  return { bin, log, busy: (unit, polls) => writeFileSync(join(bin, `busy-${unit}`), String(polls)) };
}

// An Io with a clock that sleeps advance, and the log lines kept.
function clockIo(env: Record<string, string>): { io: Io; lines: string[] } {
  const lines: string[] = [];
  let now = Date.parse('2026-11-23T12:00:00Z');
  const base = quietIo(env);
  const keep = (_o: unknown, msg?: string) => void lines.push(typeof _o === 'string' ? _o : (msg ?? ''));
  return {
    lines,
    io: {
      ...base,
      now: () => new Date(now),
      sleep: async (ms: number) => {
        now += ms;
      },
      log: { ...base.log, info: keep, warn: keep, error: keep } as Io['log'],
    },
  };
}

async function teardownOn(root: string, io: Io, stop: { noBlock: boolean; timeoutMs?: number }) {
  const { planTeardown, applyTeardown } = await import('../../src/node/apply.js');
  const { readManifest } = await import('../../src/node/state.js');
  return applyTeardown(planTeardown((await readManifest(root))!, false), root, true, io, stop);
}

describe('node teardown waits for running jobs, and says so', () => {
  it('names the agents it waits for on stderr until they stop, then removes the files', async () => {
    const root = await stagedSetup();
    const sys = standInSystemctl();
    sys.busy('bkci-agent@gpu1.service', 40);
    const { io, lines } = clockIo({ PATH: `${sys.bin}:/usr/bin:/bin` });
    const r = await teardownOn(root, io, { noBlock: false });
    const calls = readFileSync(sys.log, 'utf8').trim().split('\n');
    // Queued, never a blocking stop; no job cancelled without --timeout.
    expect(calls[0]).toBe('systemctl disable --now --no-block bkci-agent@gpu0.service bkci-agent@gpu1.service bkci-gpu-devices.service');
    expect(calls.some((c) => c.includes(' kill '))).toBe(false);
    const waits = lines.filter((l) => l.startsWith('waiting for'));
    expect(waits[0]).toMatch(/^waiting for 1 agent to finish its running job: gpu1; no time limit: --timeout DURATION/);
    // 40 polls of 2 s: said again after a minute.
    expect(waits.some((l) => /gpu1 \(1min so far\)/.test(l))).toBe(true);
    expect(r.stopping).toBeUndefined();
    expect(r.removed).toContain('/etc/buildkite-agent/bkci/manifest.json');
    expect(existsSync(join(root, 'etc/buildkite-agent/bkci/manifest.json'))).toBe(false);
    expect(calls.at(-1)).toBe('systemctl daemon-reload');
  });

  it('--timeout: cancels the remaining jobs at the limit (SIGQUIT to the agent), and says so', async () => {
    const root = await stagedSetup();
    const sys = standInSystemctl();
    sys.busy('bkci-agent@gpu0.service', 1_000_000);
    const { io, lines } = clockIo({ PATH: `${sys.bin}:/usr/bin:/bin`, QUIT_POLLS: '2' });
    const r = await teardownOn(root, io, { noBlock: false, timeoutMs: 30_000 });
    const calls = readFileSync(sys.log, 'utf8').trim().split('\n');
    expect(calls).toContain('systemctl kill --kill-whom=main --signal=SIGQUIT bkci-agent@gpu0.service');
    expect(calls.some((c) => c.includes('SIGKILL'))).toBe(false);
    expect(lines.some((l) => /--timeout 30s reached: cancelling the running jobs of gpu0/.test(l))).toBe(true);
    expect(lines.find((l) => l.startsWith('waiting for'))).toMatch(
      /^waiting for 1 agent to finish its running job: gpu0; their jobs are cancelled at --timeout 30s$/,
    );
    expect(r.cancelled).toEqual(['bkci-agent@gpu0.service']);
    expect(existsSync(join(root, 'etc/buildkite-agent/bkci/manifest.json'))).toBe(false);
  });

  it('--timeout: a cancelled job that does not end within a minute is killed', async () => {
    const root = await stagedSetup();
    const sys = standInSystemctl();
    sys.busy('bkci-agent@gpu1.service', 1_000_000);
    const { io, lines } = clockIo({ PATH: `${sys.bin}:/usr/bin:/bin`, QUIT_POLLS: '1000000' });
    // The stand-in's SIGKILL does not clear the busy count: clear it when SIGKILL is sent.
    writeFileSync(
      join(sys.bin, 'systemctl'),
      readFileSync(join(sys.bin, 'systemctl'), 'utf8').replace('  kill)\n', `  kill)\n    case "$*" in *SIGKILL*) rm -f ${sys.bin}/busy-* ;; esac\n`),
    );
    const r = await teardownOn(root, io, { noBlock: false, timeoutMs: 10_000 });
    expect(readFileSync(sys.log, 'utf8')).toContain('systemctl kill --signal=SIGKILL bkci-agent@gpu1.service');
    expect(lines.some((l) => /did not end within 1min: killing every process/.test(l))).toBe(true);
    expect(r.killed).toEqual(['bkci-agent@gpu1.service']);
  });

  it('--no-block: queues the stops, returns at once naming the busy agents, and removes nothing until they stopped', async () => {
    const root = await stagedSetup();
    const sys = standInSystemctl();
    sys.busy('bkci-agent@gpu0.service', 1_000_000);
    const { io, lines } = clockIo({ PATH: `${sys.bin}:/usr/bin:/bin` });
    const r = await teardownOn(root, io, { noBlock: true });
    expect(r.stopping).toEqual(['bkci-agent@gpu0.service']);
    expect(r.removed).toEqual([]);
    expect(lines.some((l) => /--no-block: 1 agent is still finishing its job and will stop then: gpu0/.test(l))).toBe(true);
    expect(existsSync(join(root, 'etc/buildkite-agent/bkci/manifest.json'))).toBe(true);
    const calls = readFileSync(sys.log, 'utf8').trim().split('\n');
    expect(calls[0]).toBe('systemctl disable --now --no-block bkci-agent@gpu0.service bkci-agent@gpu1.service bkci-gpu-devices.service');
    expect(calls.slice(1).every((c) => c.startsWith('systemctl is-active '))).toBe(true);
    // It waited a few seconds for the idle ones, not for the busy one's job.
    expect(calls.length).toBeLessThan(15);
    // Once it has stopped, teardown again removes everything.
    writeFileSync(join(sys.bin, 'busy-bkci-agent@gpu0.service'), '0');
    const again = await teardownOn(root, io, { noBlock: true });
    expect(again.stopping).toBeUndefined();
    expect(existsSync(join(root, 'etc/buildkite-agent/bkci/manifest.json'))).toBe(false);
  });

  it('the CLI: --timeout takes a duration, --no-block and --timeout exclude each other', async () => {
    const root = await stagedSetup();
    let r = await runBkci(['node', 'teardown', '--root', root, '--timeout', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--timeout "soon" is not a duration/);
    r = await runBkci(['node', 'teardown', '--root', root, '--timeout', '30m', '--no-block']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--no-block and --timeout exclude each other/);
    r = await runBkci(['node', 'teardown', '--root', root, '--timeout', '45min']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(root, 'etc/buildkite-agent/bkci/manifest.json'))).toBe(false);
  });
});
