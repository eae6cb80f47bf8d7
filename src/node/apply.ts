// The only writer of `bkci node setup` and `teardown`: applies a plan under a root. Files are
// written atomically with their exact modes, only when the plan says they change; commands run
// only on a real host (no --root, no --no-start).
import { chmod, chown, mkdir, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { atomicWrite } from '../util/atomic-write.js';
import { BkciError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import type { Manifest, NodePlan, PlannedCommand } from './plan.js';
import { runTool, toolEnv } from './detect/tools.js';
import { under } from './state.js';
import { PATHS } from './units.js';

export interface ApplyOptions {
  root: string;
  // Run systemctl/useradd (a real host, not --root, not --no-start for systemctl).
  runCommands: boolean;
  start: boolean;
  staging: boolean;
  user: string;
}

export interface ApplyResult {
  written: string[];
  removed: string[];
  createdDirs: string[];
  ran: string[][];
}

export async function runCommand(argv: string[], io: Io): Promise<void> {
  const { execa } = await import('execa');
  io.log.info({ cmd: argv.join(' ') }, `running ${argv.join(' ')}`);
  const r = await execa(argv[0]!, argv.slice(1), { env: toolEnv(io.env), extendEnv: false, reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0)
    throw new BkciError(
      `${argv.join(' ')} failed (exit ${r.exitCode ?? (r as { code?: string }).code}): ${String(r.stderr).trim()}`,
      'see the journal: journalctl -xe',
    );
}

async function ids(user: string, io: Io): Promise<{ uid: number; gid: number }> {
  const [u, g] = await Promise.all([runTool('id', ['-u', user], io), runTool('id', ['-g', user], io)]);
  if (!u.ok || !g.ok) throw new BkciError(`cannot look up user ${user}: ${String(u.stderr).trim()}`, `create it (useradd --system ${user}) or pass --user`);
  return { uid: Number(u.stdout), gid: Number(g.stdout) };
}

export async function applyPlan(plan: NodePlan, opts: ApplyOptions, io: Io): Promise<ApplyResult> {
  const result: ApplyResult = { written: [], removed: [], createdDirs: [], ran: [] };
  const run = async (c: PlannedCommand) => {
    const isSystemctl = c.argv[0] === 'systemctl';
    if (!opts.runCommands || (isSystemctl && !opts.start && c.argv[1] !== 'disable' && c.argv[1] !== 'daemon-reload')) return;
    await runCommand(c.argv, io);
    result.ran.push(c.argv);
  };
  for (const c of plan.commands.filter((c) => c.phase === 'before')) await run(c);

  const owner = !opts.staging && plan.dirs.some((d) => d.owner === 'agent' && d.action === 'create') ? await ids(opts.user, io) : undefined;
  for (const d of plan.dirs) {
    if (d.action !== 'create') continue;
    const p = under(opts.root, d.path);
    await mkdir(p, { recursive: true, mode: d.mode });
    await chmod(p, d.mode);
    if (owner && d.owner === 'agent') await chown(p, owner.uid, owner.gid);
    result.createdDirs.push(d.path);
  }
  for (const f of plan.files) {
    const p = under(opts.root, f.path);
    if (f.action === 'create' || f.action === 'update') {
      await atomicWrite(p, f.content, f.mode);
      result.written.push(f.path);
    } else if (f.action === 'chmod') {
      await chmod(p, f.mode);
      result.written.push(f.path);
    }
  }
  for (const path of plan.removals) {
    await unlink(under(opts.root, path)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    await removeEmptyParents(opts.root, dirname(path));
    result.removed.push(path);
  }
  for (const c of plan.commands.filter((c) => c.phase === 'after')) await run(c);
  return result;
}

// Removes now-empty directories bkci created (drop-in dirs), never above /etc/systemd/system or
// the bkci config directory.
async function removeEmptyParents(root: string, dir: string): Promise<void> {
  const stops = new Set(['/', '/etc', '/etc/systemd', '/etc/systemd/system', '/etc/buildkite-agent', PATHS.confDir]);
  let d = dir;
  while (!stops.has(d)) {
    try {
      if ((await readdir(under(root, d))).length > 0) return;
      await rmdir(under(root, d));
    } catch {
      return;
    }
    d = dirname(d);
  }
}

export interface TeardownPlan {
  units: string[];
  files: string[];
  // Removed when empty, deepest first.
  dirs: string[];
  purge: string[];
  commands: string[][];
}

// What teardown removes: exactly the manifest's files (itself included), the directories setup
// created once they are empty, and with --purge the build directories.
export function planTeardown(m: Manifest, purge: boolean): TeardownPlan {
  const units = m.agents.map((a) => a.unit);
  const commands: string[][] = units.length ? [['systemctl', 'disable', '--now', ...units]] : [];
  commands.push(['systemctl', 'daemon-reload']);
  const files = [...new Set([...m.files.map((f) => f.path), PATHS.manifest])];
  const deepestFirst = (a: string, b: string) => b.split('/').length - a.split('/').length || a.localeCompare(b);
  const purgeDirs = purge
    ? m.dirs
        .filter((d) => d.kind === 'build')
        .map((d) => d.path)
        .sort(deepestFirst)
    : [];
  const dirs = m.dirs
    .filter((d) => (d.kind === 'config' || d.created) && !purgeDirs.includes(d.path) && (d.kind !== 'build' || purge))
    .map((d) => d.path)
    .sort(deepestFirst);
  return { units, files, dirs, purge: purgeDirs, commands };
}

export async function applyTeardown(t: TeardownPlan, root: string, runCommands: boolean, io: Io): Promise<{ removed: string[]; kept: string[] }> {
  const removed: string[] = [];
  const kept: string[] = [];
  if (runCommands && t.commands[0]?.[1] === 'disable') await runCommand(t.commands[0], io);
  for (const f of t.files) {
    try {
      await unlink(under(root, f));
      removed.push(f);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  for (const d of t.purge) {
    await rm(under(root, d), { recursive: true, force: true });
    removed.push(d);
  }
  for (const d of t.dirs) {
    try {
      await rmdir(under(root, d));
      removed.push(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') kept.push(d);
      else if (code !== 'ENOENT') throw e;
    }
  }
  if (runCommands) await runCommand(['systemctl', 'daemon-reload'], io);
  return { removed, kept };
}
