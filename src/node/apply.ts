// The only writer of `bkci node setup` and `teardown`: applies a plan under a root. Files are
// written atomically with their exact modes, only when the plan says they change; commands run
// only on a real host (no --root, no --no-start).
import { lstat } from 'node:fs/promises';
import { makeDirs } from '../util/mkdirs.js';
import { basename, dirname } from 'node:path';
import { BkciError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import type { Manifest, NodePlan, PlannedCommand } from './plan.js';
import { runTool, toolEnv } from './detect/tools.js';
import { chmodSafe, fsError, mkdirSafe, removeTemps, rmdirSafe, rmTreeSafe, unlinkSafe, writeFileSafe } from './safe-fs.js';
import { isDir, JOURNAL_NAME, journalCandidates, under } from './state.js';
import { stopUnits, type StopOptions } from './teardown-stop.js';
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

// The directories whose leftover temporary files belong to bkci: each with the names of the files
// bkci writes there.
function tempBases(paths: string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const p of paths) {
    const d = dirname(p);
    if (!out.has(d)) out.set(d, new Set());
    out.get(d)!.add(basename(p));
  }
  return out;
}

async function removeLeftovers(root: string, paths: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const [dir, bases] of tempBases(paths)) removed.push(...(await removeTemps(root, dir, bases)));
  return removed;
}

// The first existing directory on the way to the manifest's: where the journal goes.
async function journalPath(root: string): Promise<string> {
  for (const p of journalCandidates()) if (await isDir(under(root, dirname(p)))) return p;
  return `/${JOURNAL_NAME}`;
}

export async function applyPlan(plan: NodePlan, opts: ApplyOptions, io: Io): Promise<ApplyResult> {
  const result: ApplyResult = { written: [], removed: [], createdDirs: [], ran: [] };
  const run = async (c: PlannedCommand) => {
    const isSystemctl = c.argv[0] === 'systemctl';
    if (!opts.runCommands || (isSystemctl && !opts.start && c.argv[1] !== 'disable' && c.argv[1] !== 'daemon-reload')) return;
    await runCommand(c.argv, io);
    result.ran.push(c.argv);
  };
  const root = opts.root;
  const journals = journalCandidates();
  // What a run killed half way left: temporary files beside bkci's files, and its journal (read
  // into the plan already; removed once this run's manifest is written).
  const leftovers = await removeLeftovers(root, [...plan.journal.files.map((f) => f.path), ...journals]);
  if (leftovers.length)
    io.log.info({ files: leftovers }, `removed ${leftovers.length} temporary file${leftovers.length === 1 ? '' : 's'} an interrupted run left`);
  const stale: string[] = [];
  for (const j of journals) if (await fileExists(under(root, j))) stale.push(j);
  for (const c of plan.commands.filter((c) => c.phase === 'before')) await run(c);
  if (!plan.changed) {
    for (const j of stale) await unlinkSafe(root, j);
    for (const c of plan.commands.filter((c) => c.phase === 'after')) await run(c);
    return result;
  }

  // A staging root is made as it is asked for (it is not bkci's: teardown leaves it).
  if (root !== '/') await makeDirs(root).catch((err: unknown) => Promise.reject(fsError(err, root)));
  // The journal first: from here on, whatever this run makes is known to the next one.
  const journal = await journalPath(root);
  await writeFileSafe(root, journal, JSON.stringify(plan.journal, null, 2) + '\n', 0o644);

  const owner = !opts.staging && plan.dirs.some((d) => d.owner === 'agent' && d.action === 'create') ? await ids(opts.user, io) : undefined;
  for (const d of plan.dirs) {
    if (d.action !== 'create') continue;
    await mkdirSafe(root, d.path, d.mode);
    await chmodSafe(root, d.path, d.mode, owner && d.owner === 'agent' ? owner : undefined);
    result.createdDirs.push(d.path);
  }
  // The manifest is the last file in the plan: written once everything it names is in place.
  for (const f of plan.files) {
    if (f.action === 'create' || f.action === 'update') {
      await writeFileSafe(root, f.path, f.content, f.mode);
      result.written.push(f.path);
    } else if (f.action === 'chmod') {
      await chmodSafe(root, f.path, f.mode);
      result.written.push(f.path);
    }
  }
  for (const path of plan.removals) {
    await unlinkSafe(root, path);
    await removeEmptyParents(root, dirname(path));
    result.removed.push(path);
  }
  for (const j of new Set([journal, ...stale])) await unlinkSafe(root, j);
  for (const c of plan.commands.filter((c) => c.phase === 'after')) await run(c);
  return result;
}

async function fileExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

// Removes now-empty directories bkci created (drop-in dirs), never above /etc/systemd/system or
// the bkci config directory.
async function removeEmptyParents(root: string, dir: string): Promise<void> {
  const stops = new Set(['/', '/etc', '/etc/systemd', '/etc/systemd/system', '/etc/buildkite-agent', PATHS.confDir]);
  for (let d = dir; !stops.has(d); d = dirname(d)) {
    if ((await rmdirSafe(root, d).catch(() => 'kept')) !== 'removed') return;
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
  // The agents' units and bkci's others (bkci-gpu-devices.service), from the manifest's files.
  const others = m.files.map((f) => /^\/etc\/systemd\/system\/(bkci-[^@/]+\.service)$/.exec(f.path)?.[1]).filter((u): u is string => u !== undefined);
  const units = [...m.agents.map((a) => a.unit), ...others];
  // Queued (--no-block) and then watched: applyTeardown says which agents it waits for.
  const commands: string[][] = units.length ? [['systemctl', 'disable', '--now', '--no-block', ...units]] : [];
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

export interface TeardownResult {
  removed: string[];
  kept: string[];
  // --no-block: agents still finishing their job; nothing was removed (their files stay until
  // they have stopped: the docker shim and hooks of a running job).
  stopping?: string[];
  // --timeout reached: agents whose job was cancelled, and those killed after that.
  cancelled?: string[];
  killed?: string[];
}

export async function applyTeardown(
  t: TeardownPlan & { manifest?: Manifest },
  root: string,
  runCommands: boolean,
  io: Io,
  stop: StopOptions = { noBlock: false },
): Promise<TeardownResult> {
  const removed: string[] = [];
  const kept: string[] = [];
  const extra: Pick<TeardownResult, 'cancelled' | 'killed'> = {};
  if (runCommands && t.commands[0]?.[1] === 'disable') {
    const s = await stopUnits(t.units, stop, io);
    if (s.stopping.length) return { removed, kept, stopping: s.stopping };
    if (s.cancelled.length) extra.cancelled = s.cancelled;
    if (s.killed.length) extra.killed = s.killed;
  }
  const journals = journalCandidates();
  await removeLeftovers(root, [...t.files, ...journals]);
  for (const f of t.files) if (await unlinkSafe(root, f)) removed.push(f);
  for (const d of t.purge) {
    await rmTreeSafe(root, d);
    removed.push(d);
  }
  for (const d of t.dirs) {
    const r = await rmdirSafe(root, d);
    if (r === 'removed') removed.push(d);
    else if (r === 'kept') kept.push(d);
  }
  // The journal of an interrupted setup, read as part of the manifest: done with it.
  for (const j of journals) if (await unlinkSafe(root, j)) removed.push(j);
  // Some queues torn down: the manifest of the others, once their files are gone.
  if (t.manifest) await writeFileSafe(root, PATHS.manifest, JSON.stringify(t.manifest, null, 2) + '\n', 0o644);
  if (runCommands) await runCommand(['systemctl', 'daemon-reload'], io);
  return { removed, kept, ...extra };
}
