// Ctrl-C: the built bkci as a child process, sent SIGINT (or SIGTERM) while it talks to a loopback
// API. It stops at once with exit 130 (143), one line saying what was interrupted, no stack trace,
// and no partial download left behind.
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILDS, build, hostile, json, spawnBkci, TOKEN, type Hostile, type Proc } from '../helpers/hostile-server.js';

let srv: Hostile | undefined;
let proc: Proc | undefined;
afterEach(async () => {
  proc?.kill('SIGKILL');
  proc = undefined;
  await srv?.close();
  srv = undefined;
});

async function interrupt(p: Proc, signal: NodeJS.Signals = 'SIGINT'): Promise<{ code: number | null; ms: number }> {
  const sent = Date.now();
  p.kill(signal);
  const { code } = await p.exit;
  return { code, ms: Date.now() - sent };
}

function clean(p: Proc): void {
  expect(p.stderr()).not.toMatch(/internal error/);
  expect(p.stderr()).not.toMatch(/^\s+at /m);
  expect(p.stdout() + p.stderr()).not.toContain(TOKEN);
}

// Every file under dir, recursively (directories included).
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true }) as string[];
}

describe('Ctrl-C', () => {
  it('build wait stops at once: exit 130, says the build keeps running', async () => {
    srv = await hostile((_req, res) => json(res, 200, build(5, 'running')));
    proc = spawnBkci(['build', 'wait', '5'], { ...srv.env, BKCI_POLL_INTERVAL: '50ms' });
    await proc.waitFor(/build #5 running: 0\/1 jobs done/);
    const { code, ms } = await interrupt(proc);
    expect(code, proc.stderr()).toBe(130);
    expect(proc.stderr()).toMatch(/^bkci: interrupted by Ctrl-C \(SIGINT\) while waiting for build #5 \(the build keeps running\)$/m);
    // Well before the 3 s fallback that ends a process which does not stop by itself.
    expect(ms).toBeLessThan(2500);
    expect(proc.stdout()).toBe('');
    clean(proc);
  });

  it('build wait in the middle of a request that hangs: SIGTERM is exit 143', async () => {
    let reached!: () => void;
    const hung = new Promise<void>((r) => (reached = r));
    srv = await hostile(() => reached());
    proc = spawnBkci(['build', 'wait', '5'], srv.env);
    await hung;
    const { code } = await interrupt(proc, 'SIGTERM');
    expect(code, proc.stderr()).toBe(143);
    expect(proc.stderr()).toMatch(/^bkci: interrupted by SIGTERM while waiting for build #5/m);
    clean(proc);
  });

  it('build logs stops in the middle of a log: exit 130, what was printed stays printed', async () => {
    srv = await hostile((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part of the log\n');
      // ...and the rest never comes.
    });
    proc = spawnBkci(['build', 'logs', '5', '--job', 'job-5'], srv.env);
    await proc.waitFor(/first part of the log/);
    const { code, ms } = await interrupt(proc);
    expect(code, proc.stderr()).toBe(130);
    expect(proc.stderr()).toMatch(/^bkci: interrupted by Ctrl-C \(SIGINT\)$/m);
    expect(proc.stdout()).toBe('first part of the log\n');
    expect(ms).toBeLessThan(2500);
    clean(proc);
  });

  it('build artifacts --download stops every download and leaves no partial file or directory', async () => {
    let started = 0;
    let allStarted!: () => void;
    const going = new Promise<void>((r) => (allStarted = r));
    srv = await hostile((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5/artifacts`)
        return json(
          res,
          200,
          ['a/one.bin', 'b/c/two.bin', 'three.bin'].map((path, i) => ({ path, download_url: `${srv!.origin}/dl/${i}`, file_size: 10_000_000 })),
        );
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Half of each file, then nothing: the downloads are in flight when the signal comes.
      res.write(Buffer.alloc(5_000_000, 1), () => {
        if (++started === 3) allStarted();
      });
    });
    const dir = join(mkdtempSync(join(tmpdir(), 'bkci-int-')), 'out');
    proc = spawnBkci(['build', 'artifacts', '5', '--download', dir, '--concurrency', '3'], srv.env);
    await going;
    // The partial files exist (the bytes have reached them) before the signal.
    const parts = () => (existsSync(dir) ? tree(dir).filter((f) => f.endsWith('.part')) : []);
    for (let i = 0; i < 100 && parts().length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(parts()).toHaveLength(3);
    const { code, ms } = await interrupt(proc);
    expect(code, proc.stderr()).toBe(130);
    expect(proc.stderr()).toMatch(/^bkci: interrupted by Ctrl-C \(SIGINT\)$/m);
    expect(ms).toBeLessThan(2500);
    // Nothing left: the files, the directories made for them, the download directory itself.
    expect(existsSync(dir) ? tree(dir) : 'removed').toBe('removed');
    clean(proc);
  });
});
