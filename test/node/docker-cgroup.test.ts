// node doctor: docker's cgroup driver. Jobs' containers keep their agent's limits only when
// docker reads `--cgroup-parent bkci-<i>.slice` as a systemd slice (the systemd driver). The
// stand-in `docker` prints real `docker info --format '{{json .}}'` output (test/fixtures/docker).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { daemonJsonCgroupDriver, dockerCgroupVerdict, parseDockerInfo } from '../../src/node/host-gates.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, standInAgent } from './helpers.js';

const FIX = join(import.meta.dirname, '../fixtures/docker');
const sample = (name: string) => readFileSync(join(FIX, name), 'utf8');
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

describe('docker info parsing and the verdict', () => {
  it('reads the real outputs', () => {
    expect(parseDockerInfo(sample('info-cgroupfs-debian9.json'))).toEqual({
      cgroupDriver: 'cgroupfs',
      rootless: false,
      serverErrors: [],
      serverVersion: '18.09.0',
    });
    expect(parseDockerInfo(sample('info-systemd-cgroupv2.json'))).toMatchObject({ cgroupDriver: 'systemd', cgroupVersion: '2', rootless: false });
    expect(parseDockerInfo(sample('info-rootless-systemd-cgroupv2.json'))).toMatchObject({ rootless: true });
    expect(parseDockerInfo(sample('info-unreachable.json'))).toEqual({
      rootless: false,
      serverErrors: ['Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?'],
    });
    // A warning line before the JSON, or no JSON at all.
    expect(parseDockerInfo(`WARNING: something\n${sample('info-systemd-cgroupv2.json')}`)?.cgroupDriver).toBe('systemd');
    expect(parseDockerInfo('Client: Docker Engine\n')).toBeUndefined();
  });

  it('systemd on cgroup v2 is ok; cgroupfs fails naming daemon.json exec-opts; rootless says what it means', () => {
    const v = (name: string, configured?: string) => dockerCgroupVerdict(parseDockerInfo(sample(name)), undefined, configured);
    expect(v('info-systemd-cgroupv2.json')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/systemd cgroup driver on cgroup v2/) });
    expect(v('info-cgroupfs-debian9.json')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/cgroupfs cgroup driver: --cgroup-parent bkci-<agent>\.slice .* outside the agent's slice/),
      fix: expect.stringMatching(/"exec-opts": \["native\.cgroupdriver=systemd"\].*\/etc\/docker\/daemon\.json.*systemctl restart docker/),
    });
    expect(v('info-rootless-systemd-cgroupv2.json')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/rootless.*user@<uid>\.service.*not the agent's system slice/),
      fix: expect.stringMatching(/Delegate=cpu cpuset io memory pids/),
    });
    // Rootless with cgroupfs (cgroup v1): no limits at all.
    const rootlessV1 = { ...parseDockerInfo(sample('info-cgroupfs-debian9.json'))!, rootless: true };
    expect(dockerCgroupVerdict(rootlessV1, undefined, undefined)).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/rootless with the cgroupfs/),
    });
    // Unreachable: a warning, unless daemon.json asks for cgroupfs.
    expect(v('info-unreachable.json')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/docker did not answer \(Cannot connect to the Docker daemon/),
    });
    expect(v('info-unreachable.json', 'cgroupfs')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/native\.cgroupdriver=systemd/) });
    expect(dockerCgroupVerdict(undefined, 'docker is not on PATH', undefined)).toMatchObject({ status: 'warn', detail: expect.stringMatching(/not on PATH/) });
    expect(daemonJsonCgroupDriver('{"exec-opts": ["native.cgroupdriver=cgroupfs"], "live-restore": true}')).toBe('cgroupfs');
    expect(daemonJsonCgroupDriver('{"runtimes": {}}')).toBeUndefined();
    expect(daemonJsonCgroupDriver('not json')).toBeUndefined();
  });
});

describe('node doctor with a stand-in docker', () => {
  // A staged setup and a host tree where docker is installed (its socket), with a stand-in
  // docker on PATH: `docker info --format {{json .}}` prints `out` (and exits `code`).
  async function doctorWith(out: string | undefined, code = 0, daemonJson?: string) {
    const root = tmp('bkci-root-');
    const host = tmp('bkci-host-');
    cpSync(HOSTS.l40s, host, { recursive: true });
    const r0 = await runBkci(['node', 'setup', '--queue', 'q', '--host-root', host, '--root', root, '--agent-bin', standInAgent('3.133.1')], {
      env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_x' }),
    });
    expect(r0.code, r0.stderr).toBe(0);
    mkdirSync(join(host, 'var/run'), { recursive: true });
    writeFileSync(join(host, 'var/run/docker.sock'), '');
    const calls = join(host, 'docker-calls');
    if (out !== undefined) writeFileSync(join(host, 'docker-info.json'), out);
    writeFileSync(
      join(host, 'bin/docker'),
      `#!/bin/sh\necho "$*" >> ${calls}\n[ "$1 $2 $3" = "info --format {{json .}}" ] || exit 64\n${out === undefined ? 'echo "error during connect: this daemon hangs up" >&2' : `cat ${join(host, 'docker-info.json')}`}\nexit ${code}\n`,
      { mode: 0o755 },
    );
    if (daemonJson) {
      mkdirSync(join(root, 'etc/docker'), { recursive: true });
      writeFileSync(join(root, 'etc/docker/daemon.json'), daemonJson);
    }
    const r = await runBkci(['node', 'doctor', '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
    const checks = JSON.parse(r.stdout).checks as { check: string; status: string; detail: string; fix?: string }[];
    return { r, item: checks.find((c) => c.check === 'docker cgroup driver'), calls: readFileSync(calls, 'utf8') };
  }

  it('systemd driver: ok; asks docker info --format {{json .}}', async () => {
    const { item, calls } = await doctorWith(sample('info-systemd-cgroupv2.json'));
    expect(calls.trim()).toBe('info --format {{json .}}');
    expect(item).toMatchObject({ status: 'ok' });
  });

  it('cgroupfs driver: fails (exit 1) naming the daemon.json fix', async () => {
    const { r, item } = await doctorWith(sample('info-cgroupfs-debian9.json'));
    expect(item).toMatchObject({ status: 'fail', fix: expect.stringContaining('native.cgroupdriver=systemd') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/docker cgroup driver/);
  });

  it('docker down: a warning, not a crash; with daemon.json naming cgroupfs, a failure', async () => {
    const first = await doctorWith(sample('info-unreachable.json'));
    expect(first.item).toMatchObject({ status: 'warn', detail: expect.stringMatching(/Cannot connect to the Docker daemon/) });
    expect(first.r.stderr).not.toMatch(/at .*\.js:\d+/);
    let { item } = await doctorWith(undefined, 1);
    expect(item).toMatchObject({ status: 'warn', detail: expect.stringMatching(/docker did not answer \(error during connect/) });
    ({ item } = await doctorWith(sample('info-unreachable.json'), 0, '{"exec-opts": ["native.cgroupdriver=cgroupfs"]}\n'));
    expect(item).toMatchObject({ status: 'fail' });
  });

  it('rootless docker: a warning saying what it means for the limits', async () => {
    const { item } = await doctorWith(sample('info-rootless-systemd-cgroupv2.json'));
    expect(item).toMatchObject({ status: 'warn', detail: expect.stringMatching(/rootless/), fix: expect.stringMatching(/Delegate=/) });
  });
});
