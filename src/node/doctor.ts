// `bkci node doctor`: the classic failures of a GPU agent host, each checked and explained with
// the fix. Reads under --root/--host-root; runs tools found on PATH. A `fail` makes the command
// exit 1; a `warn` does not.
import { infinibandNote } from './isolation.js';
import { readFile, stat } from 'node:fs/promises';
import type { Io } from '../util/io.js';
import { detectHost } from './detect/index.js';
import { runTool, which } from './detect/tools.js';
import type { Manifest } from './plan.js';
import { dockerCgroupCheck, gateChecks } from './doctor-gates.js';
import { readManifest, under } from './state.js';
import { PATHS } from './units.js';
import { vendorOf } from './vendors/index.js';
import type { DoctorItem, DoctorStatus, VendorModule } from './vendors/types.js';

export type { DoctorItem, DoctorStatus } from './vendors/types.js';

export interface DoctorOptions {
  root: string;
  hostRoot: string;
  staging: boolean;
}

const item = (check: string, status: DoctorStatus, detail: string, fix?: string): DoctorItem => ({ check, status, detail, ...(fix ? { fix } : {}) });

async function read(p: string): Promise<string | undefined> {
  return readFile(p, 'utf8').catch(() => undefined);
}

interface Passwd {
  uid: number;
  gid: number;
  home: string;
}

function passwdEntry(text: string, user: string): Passwd | undefined {
  const f = text
    .split('\n')
    .map((l) => l.split(':'))
    .find((x) => x[0] === user);
  return f ? { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' } : undefined;
}

function groupMembers(text: string, group: string): string[] | undefined {
  const f = text
    .split('\n')
    .map((l) => l.split(':'))
    .find((x) => x[0] === group);
  return f ? (f[3] ?? '').split(',').filter(Boolean) : undefined;
}

export async function runDoctor(opts: DoctorOptions, io: Io): Promise<DoctorItem[]> {
  const out: DoctorItem[] = [];
  const m = await readManifest(opts.root);
  if (!m) {
    out.push(item('setup', 'fail', `no bkci setup found (${under(opts.root, PATHS.manifest)} is missing)`, 'run bkci node setup --queue QUEUE'));
    return out;
  }
  const user = m.user;
  const passwd = (await read(under(opts.root, '/etc/passwd'))) ?? '';
  const pw = passwdEntry(passwd, user);

  out.push(await checkAgentBinary(opts, io));
  out.push(await checkToken(opts));
  out.push(...(await checkBuildPaths(opts, m, pw)));
  // Docker is in use when its socket or binary is on the host (under --host-root when given).
  const docker =
    (await exists(under(opts.hostRoot, '/var/run/docker.sock'))) ||
    (await exists(under(opts.hostRoot, '/usr/bin/docker'))) ||
    (opts.hostRoot === '/' && (await which('docker', io.env)) !== undefined);
  if (!docker) out.push(item('docker group', 'skip', 'docker is not installed'));
  else {
    const members = groupMembers((await read(under(opts.root, '/etc/group'))) ?? '', 'docker');
    if (members === undefined)
      out.push(item('docker group', 'fail', 'docker is installed but there is no docker group', 'reinstall docker, or create the group and restart docker'));
    else if (!members.includes(user))
      out.push(
        item(
          'docker group',
          'fail',
          `${user} is not in the docker group: jobs using docker fail with "permission denied ... docker.sock"`,
          `usermod -aG docker ${user} && systemctl restart 'bkci-agent@*' (root-equivalent for every job: see docs/node.md), or rootless docker for ${user}`,
        ),
      );
    // The docker socket is root: a job can mount / and rewrite the hooks and units, or start a
    // container with every GPU outside its slice. Said, not failed: many hosts accept it.
    else
      out.push(
        item(
          'docker group',
          'warn',
          `${user} is in the docker group, which is root on this host: a job can rewrite bkci's config and hooks, and start containers with every GPU (--gpus all) outside its agent's slice`,
          `where jobs of different trust share this host, run docker rootless for ${user} (dockerd-rootless-setuptool.sh install) and remove it from the docker group, or give the agents no docker`,
        ),
      );
  }
  if (docker) out.push(await dockerCgroupCheck(opts, io));
  out.push(await checkGitSsh(opts, pw, user));
  out.push(await checkCgroups(opts));
  const vendor = vendorOf(m.vendor);
  if (!vendor) out.push(item('gpu count', 'fail', `the manifest names vendor ${JSON.stringify(m.vendor)}, which bkci does not know`, 're-run bkci node setup'));
  else {
    out.push(await checkGpuCount(opts, m, vendor, io));
    out.push(...(await vendor.doctorChecks({ agents: m.agents, root: opts.root, hostRoot: opts.hostRoot, staging: opts.staging, docker, io })));
  }
  out.push(...(await gateChecks(opts, m, io)));
  const ib = await infinibandNote(opts.hostRoot, m.agents);
  if (ib) out.push(item('infiniband devices', 'warn', ib.detail, ib.fix));
  out.push(...(await checkUnits(opts, m, io)));
  return out;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function checkAgentBinary(opts: DoctorOptions, io: Io): Promise<DoctorItem> {
  const unit = (await read(under(opts.root, PATHS.templateUnit))) ?? '';
  const bin = /^ExecStart=(\S+)/m.exec(unit)?.[1];
  const hint = 'install buildkite-agent: https://buildkite.com/docs/agent/v3/ubuntu (apt install buildkite-agent), then re-run setup';
  if (!bin) return item('agent binary', 'fail', `${PATHS.templateUnit} has no ExecStart=`, 're-run bkci node setup');
  if (opts.staging) return item('agent binary', (await exists(bin)) ? 'ok' : 'warn', `${bin} (staged tree: checked on this machine)`);
  if (!(await exists(bin))) return item('agent binary', 'fail', `${bin} does not exist`, hint);
  const r = await runTool(bin, ['--version'], io, 15_000).catch(() => undefined);
  if (!r?.ok) return item('agent binary', 'fail', `${bin} --version fails`, hint);
  return item('agent binary', 'ok', r.stdout.trim().split('\n')[0] ?? bin);
}

async function checkToken(opts: DoctorOptions): Promise<DoctorItem> {
  const p = under(opts.root, PATHS.tokenFile);
  let st;
  try {
    st = await stat(p);
  } catch {
    return item('token file', 'fail', `${PATHS.tokenFile} is missing`, 'run bkci node setup with --token-file or BUILDKITE_AGENT_TOKEN');
  }
  const mode = st.mode & 0o777;
  if (mode & 0o077)
    return item(
      'token file',
      'fail',
      `${PATHS.tokenFile} has mode ${mode.toString(8).padStart(4, '0')}: other users can read the agent token`,
      `chmod 600 ${PATHS.tokenFile} (and rotate the token if others could read it)`,
    );
  if (!opts.staging && st.uid !== 0)
    return item('token file', 'fail', `${PATHS.tokenFile} is owned by uid ${st.uid}, not root`, `chown root:root ${PATHS.tokenFile}`);
  const text = (await read(p)) ?? '';
  if (!/^BUILDKITE_AGENT_TOKEN=\S+/m.test(text))
    return item('token file', 'fail', `${PATHS.tokenFile} holds no BUILDKITE_AGENT_TOKEN= line`, 're-run bkci node setup');
  return item('token file', 'ok', `${PATHS.tokenFile} mode 0600${opts.staging ? '' : ', owned by root'}`);
}

async function checkBuildPaths(opts: DoctorOptions, m: Manifest, pw: Passwd | undefined): Promise<DoctorItem[]> {
  const out: DoctorItem[] = [];
  const missing: string[] = [];
  const wrongOwner: string[] = [];
  for (const a of m.agents) {
    try {
      const st = await stat(under(opts.root, a.buildPath));
      if (!opts.staging && pw && st.uid !== pw.uid) wrongOwner.push(a.buildPath);
    } catch {
      missing.push(a.buildPath);
    }
  }
  if (missing.length)
    out.push(item('build paths', 'fail', `missing: ${missing.join(', ')} (the agent fails with "Missing build-path")`, 're-run bkci node setup'));
  if (wrongOwner.length)
    out.push(item('build paths', 'fail', `not owned by ${m.user}: ${wrongOwner.join(', ')}`, `chown -R ${m.user}: ${wrongOwner.join(' ')}`));
  if (!opts.staging && !pw) out.push(item('agent user', 'fail', `user ${m.user} does not exist`, `useradd --system --create-home ${m.user}, or re-run setup`));
  if (!out.length)
    out.push(
      item('build paths', 'ok', `${m.agents.length} build path${m.agents.length === 1 ? '' : 's'} present${opts.staging ? '' : ` and owned by ${m.user}`}`),
    );
  return out;
}

async function checkGitSsh(opts: DoctorOptions, pw: Passwd | undefined, user: string): Promise<DoctorItem> {
  const home = pw?.home || '/var/lib/buildkite-agent';
  const gitconfig = (await read(under(opts.root, `${home}/.gitconfig`))) ?? '';
  if (/insteadOf\s*=\s*git@github\.com:/i.test(gitconfig)) return item('git over ssh', 'ok', 'github SSH URLs are rewritten to https');
  let keys: string[] = [];
  try {
    const { readdir } = await import('node:fs/promises');
    keys = (await readdir(under(opts.root, `${home}/.ssh`))).filter((f) => /^id_[a-z0-9]+$/.test(f));
  } catch {
    // no ~/.ssh
  }
  if (keys.length) return item('git over ssh', 'ok', `${user} has SSH keys (${keys.join(', ')})`);
  return item(
    'git over ssh',
    'warn',
    `${user} has no SSH key: checkouts of git@github.com: URLs fail with "Permission denied (publickey)"`,
    `sudo -u ${user} git config --global url."https://github.com/".insteadOf "git@github.com:"`,
  );
}

// AllowedCPUs=, AllowedMemoryNodes= (and MemoryMax= as set) work only on the unified cgroup
// hierarchy with the cpuset and memory controllers; on cgroup v1 or hybrid hosts systemd accepts
// them and silently does nothing, so the agents share every CPU.
async function checkCgroups(opts: DoctorOptions): Promise<DoctorItem> {
  const controllers = await read(under(opts.hostRoot, '/sys/fs/cgroup/cgroup.controllers'));
  const name = 'cgroup v2';
  if (controllers === undefined) {
    return item(
      name,
      'fail',
      'the host does not use the unified cgroup hierarchy (cgroup v1 or hybrid): systemd ignores AllowedCPUs= and AllowedMemoryNodes= there, so the agents are not pinned to their CPUs and memory nodes',
      'add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub (or grub2-mkconfig) and reboot',
    );
  }
  const have = new Set(controllers.trim().split(/\s+/));
  const missing = ['cpuset', 'memory'].filter((c) => !have.has(c));
  if (missing.length)
    return item(
      name,
      'fail',
      `the ${missing.join(' and ')} controller${missing.length > 1 ? 's are' : ' is'} not available: the agents' CPU and memory limits do nothing`,
      'enable it in the kernel (cgroup_enable=cpuset,memory on the kernel command line) and reboot',
    );
  return item(name, 'ok', 'unified hierarchy with the cpuset and memory controllers');
}

async function checkGpuCount(opts: DoctorOptions, m: Manifest, vendor: VendorModule, io: Io): Promise<DoctorItem> {
  const planned = new Set(m.agents.flatMap((a) => a.gpuIndices)).size;
  if (planned === 0) return item('gpu count', 'skip', 'CPU-only agents');
  try {
    const facts = await detectHost(opts.hostRoot, vendor.id, io);
    if (facts.gpus.length !== planned)
      return item(
        'gpu count',
        'fail',
        `setup planned ${planned} GPUs, ${facts.gpus.length} are present now`,
        `find the missing GPU (${vendor.tools[0] ?? 'the vendor tool'}, dmesg), or re-run setup to plan for what is there`,
      );
    return item('gpu count', 'ok', `${planned} GPUs, as planned`);
  } catch (err) {
    const msg = (err as Error).message;
    return item('gpu count', 'fail', `cannot list the GPUs: ${msg}`, vendor.driverFix(msg));
  }
}

async function checkUnits(opts: DoctorOptions, m: Manifest, io: Io): Promise<DoctorItem[]> {
  if (opts.staging) return [item('units', 'skip', 'staged tree (--root): units are not queried')];
  const systemctl = await which('systemctl', io.env);
  if (!systemctl) return [item('units', 'skip', 'systemctl is not available')];
  const down: string[] = [];
  const gone = m.agents.filter((a) => a.missing);
  const out: DoctorItem[] = gone.length
    ? [
        item(
          'missing gpus',
          'fail',
          gone.map((a) => `${a.unit} stopped: GPU ${a.missing!.gpus.join(', ')} gone`).join('; '),
          'find the GPU (dmesg, the vendor tool, reseat or reboot), then re-run bkci node setup: the agent comes back under its name',
        ),
      ]
    : [];
  for (const a of m.agents.filter((x) => !x.missing)) {
    const r = await runTool(systemctl, ['is-active', a.unit], io, 15_000);
    if (r.stdout.trim() !== 'active') down.push(`${a.unit} (${r.stdout.trim() || 'unknown'})`);
  }
  if (down.length)
    return [
      ...out,
      item(
        'units',
        'fail',
        `not active: ${down.join(', ')}`,
        'bkci node status shows why (a failed health check names the GPU); journalctl -u bkci-agent@INSTANCE',
      ),
    ];
  const up = m.agents.length - gone.length;
  return [...out, item('units', 'ok', `${up} unit${up === 1 ? '' : 's'} active`)];
}
