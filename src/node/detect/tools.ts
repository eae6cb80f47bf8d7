// Running the vendor tools (nvidia-smi, amd-smi, npu-smi) found on the PATH of io.env. Each runs
// in its own process group with a deadline: a tool that hangs (a GPU stuck in the driver), or
// leaves a child behind that holds its output open, is killed with its whole group and reported,
// never waited on for ever.
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { basename, delimiter, isAbsolute, join } from 'node:path';
import { BkciError, InputError, UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';

export interface ToolResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
  // Killed at the deadline (the tool, or a child of it holding its output, did not finish).
  timedOut?: boolean;
  timeoutMs?: number;
  // Could not be started at all (ENOENT, EACCES): the reason.
  spawnError?: string;
}

// The absolute path of an executable on PATH, or undefined.
export async function which(cmd: string, env: Io['env']): Promise<string | undefined> {
  if (isAbsolute(cmd)) return (await isExecutable(cmd)) ? cmd : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    if (await isExecutable(p)) return p;
  }
  return undefined;
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// The environment for tools that need no credentials: tokens, secrets and passwords left out.
export function toolEnv(env: Io['env']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !/(TOKEN|SECRET|PASSWORD)$/i.test(k)) out[k] = v;
  return out;
}

export const DEFAULT_TOOL_TIMEOUT_MS = 60_000;
// Output kept per stream: vendor tools print kilobytes; anything past this is cut (and said).
const MAX_OUTPUT = 16 * 1024 * 1024;

// The deadline for one vendor tool run: BKCI_TOOL_TIMEOUT (seconds) when set, else `fallback`.
export function toolTimeoutMs(env: Io['env'], fallback = DEFAULT_TOOL_TIMEOUT_MS): number {
  const v = env.BKCI_TOOL_TIMEOUT;
  if (v === undefined || v === '') return fallback;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0 || Number(v) > 3600)
    throw new UsageError(`BKCI_TOOL_TIMEOUT=${JSON.stringify(v)}: expected seconds, more than 0 and at most 3600`);
  return Math.round(Number(v) * 1000);
}

export async function runTool(cmd: string, args: string[], io: Pick<Io, 'env' | 'log'>, timeoutMs = DEFAULT_TOOL_TIMEOUT_MS): Promise<ToolResult> {
  const deadline = Math.min(timeoutMs, toolTimeoutMs(io.env, timeoutMs));
  const r = await new Promise<ToolResult>((resolve) => {
    let child;
    try {
      child = spawn(cmd, args, { env: toolEnv(io.env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      resolve({ ok: false, stdout: '', stderr: '', exitCode: undefined, spawnError: (err as Error).message });
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout.on('data', (c: Buffer) => {
      if (outLen < MAX_OUTPUT) out.push(c);
      outLen += c.length;
    });
    child.stderr.on('data', (c: Buffer) => {
      if (errLen < MAX_OUTPUT) err.push(c);
      errLen += c.length;
    });
    let timedOut = false;
    let exitCode: number | undefined;
    let spawnError: string | undefined;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
      // Output pipes held by a process outside the group (or a stuck kill): stop waiting for them.
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, 2000).unref();
    }, deadline);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({
        ok: !timedOut && spawnError === undefined && exitCode === 0,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode: timedOut ? undefined : exitCode,
        ...(timedOut ? { timedOut, timeoutMs: deadline } : {}),
        ...(spawnError ? { spawnError } : {}),
      });
    };
    child.on('error', (e) => {
      spawnError = e.message;
      finish();
    });
    child.on('exit', (code) => {
      exitCode = code ?? undefined;
      // Children the tool left behind would hold its output open: they go with it.
      killGroup();
    });
    child.on('close', finish);
  });
  io.log.debug({ cmd, args, exitCode: r.exitCode, timedOut: r.timedOut }, 'ran a vendor tool');
  return r;
}

// How a failed tool run reads in a message: `nvidia-smi -L timed out after 60 s (killed it and
// its children)`, `... failed (exit 9): <first line it printed>`.
export function describeFailure(cmd: string, args: string[], r: ToolResult): string {
  const name = `${basename(cmd)}${args.length ? ' ' + args.join(' ') : ''}`;
  if (r.timedOut) return `${name} did not finish within ${(r.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS) / 1000} s (killed it and its children)`;
  if (r.spawnError) return `${name} could not be run: ${r.spawnError}`;
  const said = (r.stderr || r.stdout).trim().split('\n')[0] ?? '';
  return `${name} failed (exit ${r.exitCode ?? '?'})${said ? `: ${said}` : ''}`;
}

// A vendor tool run during detection that must not hang: past its deadline it is killed and bkci
// stops (exit 1).
export async function runBounded(path: string, args: string[], io: Pick<Io, 'env' | 'log'>): Promise<ToolResult> {
  const r = await runTool(path, args, io);
  if (r.timedOut) throw new BkciError(describeFailure(path, args, r), 'the driver or a GPU is stuck: look for Xid errors in dmesg; a reboot may be needed');
  return r;
}

// A detection tool's output; missing is bad usage (the wrong --vendor), failing is bad input.
export async function requireTool(cmd: string, args: string[], io: Pick<Io, 'env' | 'log'>, vendor: { id: string; label: string }): Promise<string> {
  const path = await which(cmd, io.env);
  if (!path) throw new UsageError(`--vendor ${vendor.id}: ${cmd} is not on PATH`, `install the ${vendor.label} driver tools, or pick the right --vendor`);
  const r = await runBounded(path, args, io);
  if (!r.ok) throw new InputError(describeFailure(cmd, args, r), 'check that the driver is loaded (the tool must work before agents can use the GPUs)');
  return r.stdout;
}

// A tool run for the health check: its output even when it failed (nvidia-smi prints the GPUs it
// can read and an error for the one it cannot), and the error's first line. Undefined when the
// tool is not on PATH.
export async function healthRun(cmd: string, args: string[], io: Pick<Io, 'env' | 'log'>): Promise<{ stdout: string; error?: string } | undefined> {
  const path = await which(cmd, io.env);
  if (!path) return undefined;
  const r = await runTool(path, args, io, 30_000);
  if (r.ok) return { stdout: r.stdout };
  if (r.timedOut || r.spawnError) return { stdout: '', error: describeFailure(cmd, args, r) };
  const said = `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l && !/^GPU-|^\d/.test(l));
  return { stdout: r.stdout, error: `${cmd} failed${r.exitCode !== undefined ? ` (exit ${r.exitCode})` : ''}${said ? `: ${said}` : ''}` };
}

// A health tool's output when it ran cleanly, else undefined.
export async function healthOutput(cmd: string, args: string[], io: Pick<Io, 'env' | 'log'>): Promise<string | undefined> {
  const r = await healthRun(cmd, args, io);
  return r && r.error === undefined ? r.stdout : undefined;
}
