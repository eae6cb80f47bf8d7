// AMD docker jobs get the host's render/video groups by number: `--group-add render` is resolved
// in the image's /etc/group, which rarely has `render`, and the container would not start.
import { chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { amd } from '../../src/node/vendors/amd.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, standInAgent } from './helpers.js';

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const agentBin = standInAgent('3.133.1');

async function stage(host: string) {
  const root = tmp('bkci-root-');
  const r = await runBkci(['node', 'setup', '--queue', 'mi300', '--host-root', host, '--root', root, '--agent-bin', agentBin], {
    env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_amd' }),
  });
  expect(r.code, r.stderr).toBe(0);
  const hook = readFileSync(join(root, 'etc/buildkite-agent/bkci/hooks/gpu0/environment'), 'utf8');
  const args = /^export BKCI_DOCKER_RUN_ARGS='([^']*)'$/m.exec(hook)![1]!;
  const compose = readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu0.compose.yml'), 'utf8');
  return { r, args, compose };
}

const groupAdds = (args: string) => [...args.matchAll(/--group-add (\S+)/g)].map((m) => m[1]);

describe('AMD: --group-add with the host’s gids', () => {
  it('the host’s render and video gids from its /etc/group (under --host-root), never the names', async () => {
    const host = tmp('bkci-host-');
    cpSync(HOSTS.amd, host, { recursive: true });
    mkdirSync(join(host, 'etc'), { recursive: true });
    writeFileSync(join(host, 'etc/group'), 'root:x:0:\nvideo:x:44:\nrender:x:109:\nbuildkite-agent:x:998:\n');
    const kfdGid = statSync(join(host, 'dev/kfd')).gid;
    const { args, compose } = await stage(host);
    const expected = [...new Set([...(kfdGid > 0 ? [String(kfdGid)] : []), '44', '109'])];
    expect(groupAdds(args).sort()).toEqual(expected.sort());
    expect(args).not.toMatch(/--group-add (render|video)/);
    expect(args).toMatch(/--device \/dev\/kfd/);
    for (const g of expected) expect(compose).toContain(`- "${g}"`);
  });

  it('the group owning /dev/kfd and the render nodes on the host', async () => {
    const host = tmp('bkci-host-');
    cpSync(HOSTS.amd, host, { recursive: true });
    // As root the nodes get the render group's usual gid; otherwise they keep this user's group.
    if (process.getuid?.() === 0)
      for (const p of ['dev/kfd', ...readdirSync(join(host, 'dev/dri')).map((n) => `dev/dri/${n}`)]) chownSync(join(host, p), 0, 992);
    const gid = statSync(join(host, 'dev/kfd')).gid;
    const { r, args } = await stage(host);
    if (gid > 0) {
      expect(groupAdds(args)).toEqual([String(gid)]);
    } else {
      // Root's group only and no /etc/group: the names, with a warning.
      expect(groupAdds(args)).toEqual(['render', 'video']);
      expect(r.stderr).toMatch(/no numeric gid for \/dev\/kfd/);
    }
  });

  it('dockerArgs: numbers when detection found them, names otherwise', () => {
    const gpu = {
      vendor: 'amd',
      index: 0,
      isolationId: 'GPU-1',
      name: 'MI300X',
      busId: '0000:05:00.0',
      numaNode: 0,
      devices: ['/dev/dri/renderD128'],
      mig: [],
    };
    expect(amd.dockerArgs([{ gpu: { ...gpu, groupIds: [109, 44] }, id: 'GPU-1' }], ['/dev/dri/renderD128', '/dev/kfd'], ['render', 'video'])).toEqual([
      '--device',
      '/dev/dri/renderD128',
      '--device',
      '/dev/kfd',
      '--group-add',
      '109',
      '--group-add',
      '44',
    ]);
    expect(amd.dockerArgs([{ gpu, id: 'GPU-1' }], ['/dev/kfd'], ['render', 'video'])).toEqual([
      '--device',
      '/dev/kfd',
      '--group-add',
      'render',
      '--group-add',
      'video',
    ]);
  });
});
