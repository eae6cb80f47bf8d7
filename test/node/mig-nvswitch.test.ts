// MIG agents on an NVSwitch host (HGX A100 with MIG enabled): `node check` judges the fabric
// state of the instance's parent GPU, as it does for whole-GPU agents, so a MIG agent whose GPU
// nvidia-fabricmanager has not registered does not take jobs.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, standInAgent } from './helpers.js';

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

// `nvidia-smi -q` blocks (the layout of a real -q: the GPU header, `GPU UUID`, the `Fabric`
// section) for the MIG host's GPUs, each with its fabric state.
function qText(gpus: { bus: string; uuid: string; state: string; status: string }[]): string {
  const head =
    '\n==============NVSMI LOG==============\n\nTimestamp                                 : Wed Jul 31 11:22:39 2024\nDriver Version                            : 535.161.08\nCUDA Version                              : 12.2\n\nAttached GPUs                             : 4\n';
  return (
    head +
    gpus
      .map(
        (g) =>
          `GPU ${g.bus}\n    Product Name                          : NVIDIA A100-SXM4-40GB\n    MIG Mode\n        Current                           : Enabled\n        Pending                           : Enabled\n    GPU UUID                              : ${g.uuid}\n    Fabric\n        State                             : ${g.state}\n        Status                            : ${g.status}\n    Processes                             : None\n`,
      )
      .join('\n')
  );
}

function migHostWithNvswitch(state0: string, status0: string): string {
  const host = tmp('bkci-host-');
  cpSync(HOSTS.mig, host, { recursive: true });
  // Six NVSwitch gen-2 functions (A100 HGX: device 0x1af1), as setup finds them.
  for (let i = 0; i < 6; i++) {
    const d = join(host, `sys/bus/pci/devices/0000:c${i}:00.0`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'vendor'), '0x10de\n');
    writeFileSync(join(d, 'class'), '0x068000\n');
    writeFileSync(join(d, 'device'), '0x1af1\n');
    writeFileSync(join(d, 'numa_node'), `${i < 3 ? 0 : 1}\n`);
  }
  const rows = readFileSync(join(host, 'out/nvidia-query.csv'), 'utf8').trim().split('\n');
  const gpus = rows.map((r, i) => {
    const f = r.split(', ');
    return { bus: f[3]!, uuid: f[1]!, state: i === 0 ? state0 : 'Completed', status: i === 0 ? status0 : 'Success' };
  });
  writeFileSync(join(host, 'out/nvidia-q.txt'), qText(gpus));
  return host;
}

describe('node check on a MIG host with NVSwitches', () => {
  it('a MIG agent fails while its parent GPU’s fabric is not Completed; other GPUs’ instances pass', async () => {
    const host = migHostWithNvswitch('In Progress', 'N/A');
    const root = tmp('bkci-root-');
    const s = await runBkci(['node', 'setup', '--queue', 'q', '--mig', '--host-root', host, '--root', root, '--agent-bin', standInAgent('3.133.1')], {
      env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_mig' }),
    });
    expect(s.code, s.stderr).toBe(0);
    expect(readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu0-mig1.env'), 'utf8')).toMatch(/^BKCI_NVSWITCH=6$/m);
    expect(readFileSync(join(root, 'etc/systemd/system/bkci-agent@.service'), 'utf8')).toMatch(/^After=.*nvidia-fabricmanager\.service/m);
    const check = (a: string) => runBkci(['node', 'check', a, '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
    for (const a of ['gpu0-mig0', 'gpu0-mig1']) {
      const r = await check(a);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(/NVSwitch fabric state is In Progress \(not Completed\)/);
    }
    // gpu1's instances: its fabric is Completed (the fabric state is the parent GPU's).
    const ok = await check('gpu1-mig0');
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    // ... and it is gpu1's own state that counts: once that is not Completed, gpu1-mig0 fails too.
    const q = join(host, 'out/nvidia-q.txt');
    const blocks = readFileSync(q, 'utf8').split('\n\n');
    writeFileSync(q, blocks.map((b) => (b.includes('GPU-a291c59c') ? b.replace('Completed', 'Not Started') : b)).join('\n\n'));
    const r1 = await check('gpu1-mig0');
    expect(r1.code, r1.stdout).toBe(1);
    expect(r1.stdout).toMatch(/NVSwitch fabric state is Not Started/);
  });

  it('Completed with a Status other than Success fails too; all Completed passes', async () => {
    const bad = migHostWithNvswitch('Completed', 'Failure');
    const root = tmp('bkci-root-');
    const env = hostEnv(bad, { BUILDKITE_AGENT_TOKEN: 'bkat_mig' });
    expect(
      (await runBkci(['node', 'setup', '--queue', 'q', '--mig', '--host-root', bad, '--root', root, '--agent-bin', standInAgent('3.133.1')], { env })).code,
    ).toBe(0);
    let r = await runBkci(['node', 'check', 'gpu0-mig1', '--root', root, '--host-root', bad, '--json'], { env });
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toMatch(/Failure/);
    writeFileSync(join(bad, 'out/nvidia-q.txt'), readFileSync(join(bad, 'out/nvidia-q.txt'), 'utf8').replace('Failure', 'Success'));
    r = await runBkci(['node', 'check', 'gpu0-mig1', '--root', root, '--host-root', bad, '--json'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});
