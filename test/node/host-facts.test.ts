// Host facts read from a --host-root tree rather than this machine: systemd's version (a staged
// tree never asks the systemctl on PATH).
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemdVersion } from '../../src/node/host-facts.js';
import { systemdVersionFromDpkg, systemdVersionFromLibs } from '../../src/node/host-gates.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, standInAgent } from './helpers.js';

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const RHEL8 = join(HOSTS.h100, '../rhel8-systemd239');

// A stand-in systemctl on PATH that claims systemd 239: a staged tree must not believe it.
function lyingSystemctl(): string {
  const bin = tmp('bkci-sysbin-');
  writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\n[ "$1" = --version ] && echo 'systemd 239 (239-82.el8_10.2)' && exit 0\nexit 2\n`, { mode: 0o755 });
  return bin;
}

describe('systemd version of a host tree', () => {
  it('from the libsystemd-shared file name (Debian, RHEL, Fedora with its release tag) or dpkg status', () => {
    expect(systemdVersionFromLibs(['libsystemd-core-252.so', 'libsystemd-shared-252.so', 'systemd-udevd'])).toBe(252);
    expect(systemdVersionFromLibs(['libsystemd-shared-255.4-1.fc40.so'])).toBe(255);
    expect(systemdVersionFromLibs(['libsystemd-shared-239.so'])).toBe(239);
    expect(systemdVersionFromLibs(['libsystemd.so.0', 'systemd'])).toBeUndefined();
    const status = [
      'Package: systemd-sysv\nStatus: install ok installed\nVersion: 249.11-0ubuntu3.12',
      'Package: systemd\nStatus: install ok installed\nPriority: important\nVersion: 249.11-0ubuntu3.12',
    ].join('\n\n');
    expect(systemdVersionFromDpkg(status)).toBe(249);
    // Removed, config files left: not installed.
    expect(systemdVersionFromDpkg('Package: systemd\nStatus: deinstall ok config-files\nVersion: 245.4-4ubuntu3\n')).toBeUndefined();
  });

  it('a staged tree is read, never the systemctl on PATH; unknown is undefined', async () => {
    const tree = tmp('bkci-host-');
    const io = quietIo({ PATH: `${lyingSystemctl()}:/usr/bin:/bin` });
    expect(await systemdVersion(tree, io)).toBeUndefined();
    mkdirSync(join(tree, 'usr/lib/x86_64-linux-gnu/systemd'), { recursive: true });
    writeFileSync(join(tree, 'usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so'), '');
    expect(await systemdVersion(tree, io)).toBe(252);
    const rhel9 = tmp('bkci-host-');
    mkdirSync(join(rhel9, 'usr/lib64/systemd'), { recursive: true });
    writeFileSync(join(rhel9, 'usr/lib64/systemd/libsystemd-shared-252.so'), '');
    expect(await systemdVersion(rhel9, io)).toBe(252);
    const ubuntu = tmp('bkci-host-');
    mkdirSync(join(ubuntu, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(join(ubuntu, 'var/lib/dpkg/status'), 'Package: systemd\nStatus: install ok installed\nVersion: 255.4-1ubuntu8.4\n');
    expect(await systemdVersion(ubuntu, io)).toBe(255);
    expect(await systemdVersion(RHEL8, io)).toBe(239);
    // This machine (--host-root /): systemctl --version on PATH.
    expect(await systemdVersion('/', io)).toBe(239);
  });

  it('setup on a tree without a systemd version warns; with a new systemd in the tree a lying systemctl on PATH is ignored', async () => {
    const agentBin = standInAgent('3.133.1');
    const host = tmp('bkci-host-');
    cpSync(HOSTS.l40s, host, { recursive: true });
    const env = { ...hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_x' }), PATH: `${lyingSystemctl()}:${hostEnv(host).PATH}` };
    const setup = (root: string) => runBkci(['node', 'setup', '--queue', 'q', '--host-root', host, '--root', root, '--agent-bin', agentBin], { env });
    let r = await setup(tmp('bkci-root-'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/could not tell the systemd version of .* AllowedCPUs= and AllowedMemoryNodes= need systemd 244 or later/);
    mkdirSync(join(host, 'usr/lib/systemd'), { recursive: true });
    writeFileSync(join(host, 'usr/lib/systemd/libsystemd-shared-255.so'), '');
    const root = tmp('bkci-root-');
    r = await setup(root);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/systemd version|systemd 239/);
    // Doctor reads the tree too.
    const { runDoctor } = await import('../../src/node/doctor.js');
    const items = await runDoctor({ root, hostRoot: host, staging: true }, quietIo(env));
    expect(items.find((i) => i.check === 'systemd version')).toMatchObject({ status: 'ok', detail: 'systemd 255' });
    const bare = tmp('bkci-host-');
    cpSync(HOSTS.l40s, bare, { recursive: true });
    const items2 = await runDoctor({ root, hostRoot: bare, staging: true }, quietIo(env));
    expect(items2.find((i) => i.check === 'systemd version')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/no systemd version found under/),
    });
  });
});
