// Running the vendor tools (nvidia-smi, amd-smi, npu-smi) found on the PATH of io.env.
import { access, constants } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Io } from '../../util/io.js';

export interface ToolResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
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

export async function runTool(cmd: string, args: string[], io: Pick<Io, 'env' | 'log'>, timeoutMs = 60_000): Promise<ToolResult> {
  const { execa } = await import('execa');
  const r = await execa(cmd, args, { env: toolEnv(io.env), extendEnv: false, reject: false, timeout: timeoutMs, stdin: 'ignore' });
  io.log.debug({ cmd, args, exitCode: r.exitCode }, 'ran a vendor tool');
  return { ok: r.exitCode === 0 && !r.failed, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode };
}
