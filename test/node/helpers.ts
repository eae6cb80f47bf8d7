// Fixture hosts and a quiet Io for calling the node domain directly.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { SetupOptions } from '../../src/node/plan.js';
import type { Io } from '../../src/util/io.js';

const dir = join(import.meta.dirname, '../fixtures/hosts');
export const HOSTS = {
  h100: join(dir, 'dual-socket-8xh100'),
  l40s: join(dir, 'single-socket-2xl40s'),
  amd: join(dir, 'amd-8xmi300x'),
  ascend: join(dir, 'ascend-8x910b'),
  mig: join(dir, 'mig-4xa100'),
  // MIG with uneven partitions next to whole GPUs, on two sockets.
  migUneven: join(dir, 'mig-uneven-a100-80gb'),
  cpu: join(dir, 'cpu-only-2s'),
};

// PATH with the host's stand-in vendor tools first.
export function hostEnv(host: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: `${join(host, 'bin')}:/usr/local/bin:/usr/bin:/bin`, ...extra };
}

export function quietIo(env: Record<string, string>): Io {
  const noop = () => undefined;
  return {
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    stdin: Readable.from(['']),
    env,
    cwd: process.cwd(),
    stdoutIsTTY: false,
    stderrIsTTY: false,
    color: false,
    now: () => new Date('2026-11-23T12:00:00Z'),
    sleep: async () => undefined,
    log: { trace: noop, debug: noop, info: noop, warn: noop, error: noop, level: 'silent' },
  };
}

const GiB = 1024 ** 3;

// Setup options as an operator would pass them, for planning on the fixture hosts.
export const setupOptions = (o: Partial<SetupOptions> = {}): SetupOptions => ({
  queue: 'gpu',
  gpusPerAgent: 1,
  agents: 1,
  tags: [],
  memoryReserve: 4 * GiB,
  cpuReserve: 0,
  user: 'buildkite-agent',
  agentBin: '/usr/bin/buildkite-agent',
  bkciBin: ['/usr/bin/node', '/opt/bkci/dist/cli/bin.js'],
  buildRoot: '/var/lib/buildkite-agent/builds',
  mig: false,
  minFreeDisk: 20 * GiB,
  token: 'bkat_tokentokentoken',
  ...o,
});

// A stand-in buildkite-agent (in a fresh temporary directory) that prints `buildkite-agent version V, build 1`.
export function standInAgent(version = '3.99.0'): string {
  const p = join(mkdtempSync(join(tmpdir(), 'bkci-agentbin-')), 'buildkite-agent');
  writeFileSync(p, `#!/bin/sh\necho "buildkite-agent version ${version}, build 1"\n`, { mode: 0o755 });
  return p;
}
