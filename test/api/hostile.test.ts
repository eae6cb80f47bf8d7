// `bkci build ...` against a hostile API (issue 15, section 5): every point as a regression test
// against a real loopback server.
import { mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planDownloads, unsafePath } from '../../src/api/artifacts.js';
import type { Artifact } from '../../src/api/types.js';
import { runBkci } from '../helpers/io.js';
import { BIN, BUILDS, build, closedPort, clean, hostileEach, json, TOKEN, type Hostile } from '../helpers/hostile-server.js';

const serve = hostileEach();
let srv: Hostile;

describe('bounded exchanges', () => {
  it('a body arriving one byte at a time is cut off by the whole-exchange timeout, with a clear error', async () => {
    srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const body = JSON.stringify(build(5));
      let i = 0;
      const t = setInterval(() => {
        if (res.destroyed || i >= body.length) return clearInterval(t);
        res.write(body[i++]);
      }, 100);
      res.on('close', () => clearInterval(t));
    });
    const started = Date.now();
    const r = await runBkci(['build', 'get', '5', '--json'], { env: { ...srv.env, BKCI_HTTP_TIMEOUT: '0.4' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /GET \/v2\/organizations\/org\/pipelines\/pipe\/builds\/5: the request timed out \(no complete answer within 400ms\)( while reading the answer)? \(gave up after 5 attempts\)/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    clean(r);
  });

  it('a streamed body (a log) that trickles is cut off too: the timeout period must bring 16 KiB', async () => {
    srv = await serve((req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/plain' });
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write('x')), 50);
      res.on('close', () => clearInterval(t));
    });
    const r = await runBkci(['build', 'logs', '5', '--job', 'job-5'], { env: { ...srv.env, BKCI_HTTP_TIMEOUT: '0.5' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the answer broke off after \d+ bytes \(the request timed out: the answer from http:\/\/127\.0\.0\.1:\d+ arrives too slowly/);
    clean(r);
  });

  it('an endless fast JSON body is capped at 64 MiB with a clear error', async () => {
    srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      res.write('[');
      pump();
    });
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/GET \/v2\/organizations\/org\/pipelines\/pipe\/builds\/5: the answer is larger than 64 MiB; not reading more of it/);
    expect(srv.requests).toHaveLength(1);
    clean(r);
  });

  it('a gzip bomb is capped the same way after decoding', async () => {
    const { gzipSync } = await import('node:zlib');
    const bomb = gzipSync(Buffer.alloc(80 * 1024 * 1024, 0x20));
    srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(bomb);
    });
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/larger than 64 MiB/);
    clean(r);
  });

  it('a corrupt gzip answer is named, not an internal error', async () => {
    srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(Buffer.from('definitely not gzip'));
    });
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not valid gzip data/);
    clean(r);
  });
});

describe('headers that are not URLs', () => {
  it('a Location that is not a valid URL is a clear error', async () => {
    srv = await serve((_req, res) => {
      res.writeHead(302, { location: 'http://[::1' });
      res.end();
    });
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/answered 302 with a Location header that is not a URL: "http:\/\/\[::1"/);
    clean(r);
  });

  it('a Link next that is not a valid URL is a clear error', async () => {
    srv = await serve((_req, res) => json(res, 200, [build(1)], { link: '<http://[oops>; rel="next"' }));
    const r = await runBkci(['build', 'list'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Link header names a next page that is not a URL: "http:\/\/\[oops"/);
    clean(r);
  });

  it('a download redirect that is not an http(s) URL is a clear error for that file; the others download', async () => {
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5/artifacts`)
        return json(res, 200, [
          { path: 'bad.txt', download_url: `${srv.origin}/dl/bad`, file_size: 2 },
          { path: 'good.txt', download_url: `${srv.origin}/dl/good`, file_size: 2 },
        ]);
      if (url.pathname === '/dl/bad') return void res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      res.writeHead(200).end('ok');
    });
    const dir = mkdtempSync(join(tmpdir(), 'bkci-hostile-'));
    const r = await runBkci(['build', 'artifacts', '5', '--download', dir], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/"bad\.txt": GET \/dl\/bad: the download redirect does not lead to an http\(s\) URL: "file:\/\/\/etc\/passwd"/);
    expect(readFileSync(join(dir, 'good.txt'), 'utf8')).toBe('ok');
    expect(readdirSync(dir)).toEqual(['good.txt']);
    clean(r);
  });
});

describe('build logs streams', () => {
  it('writes each part of a log as it arrives (the server waits for the client to print the first part)', async () => {
    const first = 'a'.repeat(256 * 1024) + '\n';
    let printed = '';
    let release!: () => void;
    const seen = new Promise<void>((r) => (release = r));
    srv = await serve(async (_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(first);
      // A client that buffers the whole log never prints before the end: this would time out.
      await Promise.race([seen, new Promise((_r, reject) => setTimeout(() => reject(new Error('nothing printed before the end')), 10_000))]);
      res.end('the end\n');
    });
    const { PassThrough } = await import('node:stream');
    const { runCli } = await import('../../src/cli/main.js');
    const out = new PassThrough();
    out.on('data', (c: Buffer) => {
      printed += c.toString();
      if (printed.length >= first.length) release();
    });
    const err = new PassThrough();
    let stderr = '';
    err.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await runCli(['build', 'logs', '5', '--job', 'job-5'], {
      stdout: out,
      stderr: err,
      stdin: process.stdin,
      env: srv.env,
      cwd: process.cwd(),
      stdoutIsTTY: false,
      stderrIsTTY: false,
      color: false,
      now: () => new Date(),
      sleep: async () => undefined,
    });
    expect(code, stderr).toBe(0);
    expect(printed).toBe(first + 'the end\n');
  });

  it('a log that printed the API token shows it redacted, even split between two parts', async () => {
    srv = await serve(async (_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(`export T=${TOKEN.slice(0, 10)}`);
      await new Promise((r) => setTimeout(r, 100));
      res.end(`${TOKEN.slice(10)} done; again ${TOKEN}\n`);
    });
    const r = await runBkci(['build', 'logs', '5', '--job', 'job-5'], { env: srv.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('export T=[REDACTED] done; again [REDACTED]\n');
  });

  it('a 256 MB log goes through a real bkci in constant memory', async () => {
    const total = 256 * 1024 * 1024;
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/plain' });
      const line = Buffer.from('0123456789abcdef'.repeat(4095) + 'log line end..\n');
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += line.length;
          if (!res.write(line)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [BIN, 'build', 'logs', '5', '--job', 'job-5'], {
      env: { PATH: process.env.PATH ?? '', ...srv.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (bytes += c.length));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let peakKb = 0;
    const t = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // exited
      }
    }, 50);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearInterval(t);
    expect(code, stderr).toBe(0);
    expect(bytes).toBeGreaterThanOrEqual(total);
    // Holding the log would take at least its size; streamed, the peak is Node's own (~130 MB here
    // for a 20 MB log and a 400 MB one alike).
    expect(peakKb).toBeGreaterThan(0);
    expect(peakKb * 1024, `peak RSS ${peakKb} kB`).toBeLessThan(200 * 1024 * 1024);
  }, 60_000);
});

describe('artifact paths', () => {
  const art = (path: string): Artifact => ({ path, download_url: `https://x/${encodeURIComponent(path)}` }) as Artifact;

  it('unsafe paths are refused with a reason', () => {
    expect(unsafePath('a\0b')).toMatch(/NUL/);
    expect(unsafePath('/etc/passwd')).toMatch(/absolute/);
    expect(unsafePath('../x')).toMatch(/`\.\.`/);
    expect(unsafePath('a/../../x')).toMatch(/`\.\.`/);
    expect(unsafePath('x'.repeat(6000))).toMatch(/6000 bytes long \(at most 255\)/);
    expect(unsafePath('')).toMatch(/empty/);
    expect(unsafePath('./.')).toMatch(/names no file/);
    expect(unsafePath('a/./b..c/..d')).toBeUndefined();
    expect(unsafePath('résultats/ü.txt')).toBeUndefined();
  });

  it('a file and a directory of the same name, and a path given twice: the clashing ones are refused', () => {
    const plan = planDownloads('/d', [art('a'), art('a/b'), art('c/d'), art('c/d'), art('e/f/g'), art('e')]);
    expect(plan.map((p) => ('file' in p ? p.file : `refused: ${p.refused}`))).toEqual([
      'refused: it is a file where artifact "a/b" needs a directory',
      '/d/a/b',
      '/d/c/d',
      'refused: another artifact ("c/d") has the same path; kept the first',
      '/d/e/f/g',
      'refused: it is a file where artifact "e/f/g" needs a directory',
    ]);
    const long = planDownloads('/d', [art(Array.from({ length: 30 }, () => 'x'.repeat(200)).join('/'))]);
    expect('refused' in long[0]! && long[0].refused).toMatch(/longer than 4095 bytes/);
  });

  it('downloads the safe ones and names the refused ones (exit 1); nothing is written outside', async () => {
    const content = (p: string) => `content of ${p.length} chars\n`;
    const paths = ['ok/one.txt', 'bad\0nul', 'x'.repeat(6000), '/abs/olute', '../escape', 'ok/two.txt', 'clash', 'clash/inner', 'deep/a/b/c.txt'];
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5/artifacts`)
        return json(
          res,
          200,
          paths.map((p, i) => ({
            path: p,
            download_url: `${srv.origin}/dl/${i}`,
            file_size: Buffer.byteLength(content(p)),
            sha1sum: createHash('sha1').update(content(p)).digest('hex'),
          })),
        );
      const i = Number(url.pathname.split('/').pop());
      res.writeHead(200).end(content(paths[i]!));
    });
    const parent = mkdtempSync(join(tmpdir(), 'bkci-hostile-'));
    const dir = join(parent, 'out');
    const r = await runBkci(['build', 'artifacts', '5', '--download', dir, '--concurrency', '3'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/5 artifacts not downloaded \(4 downloaded\)/);
    expect(r.stderr).toMatch(/"bad\\u0000nul": the path contains a NUL character/);
    expect(r.stderr).toMatch(/"x{6000}": a name in the path is 6000 bytes long/);
    expect(r.stderr).toMatch(/"\/abs\/olute": the path is absolute/);
    expect(r.stderr).toMatch(/"\.\.\/escape": the path contains `\.\.`/);
    expect(r.stderr).toMatch(/"clash": it is a file where artifact "clash\/inner" needs a directory/);
    for (const p of ['ok/one.txt', 'ok/two.txt', 'clash/inner', 'deep/a/b/c.txt']) expect(readFileSync(join(dir, p), 'utf8')).toBe(content(p));
    expect(readdirSync(parent)).toEqual(['out']);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['clash/inner', 'deep/a/b/c.txt', 'ok/one.txt', 'ok/two.txt'].map((p) => join(dir, p)));
    clean(r);
  });

  it('--concurrency N downloads N files at a time (default 4), each checked while it streams', async () => {
    let inFlight = 0;
    let most = 0;
    const body = (i: number) => `file ${i} `.repeat(1000);
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5/artifacts`)
        return json(
          res,
          200,
          Array.from({ length: 9 }, (_x, i) => ({
            path: `f/${i}.txt`,
            download_url: `${srv.origin}/dl/${i}`,
            file_size: body(i).length,
            sha1sum: createHash('sha1').update(body(i)).digest('hex'),
          })),
        );
      most = Math.max(most, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200).end(body(Number(url.pathname.split('/').pop())));
      }, 60);
    });
    for (const [flag, want] of [
      [[], 4],
      [['--concurrency', '2'], 2],
      [['--concurrency', '1'], 1],
    ] as const) {
      most = 0;
      const dir = mkdtempSync(join(tmpdir(), 'bkci-conc-'));
      const r = await runBkci(['build', 'artifacts', '5', '--download', dir, ...flag], { env: srv.env });
      expect(r.code, r.stderr).toBe(0);
      expect(most).toBe(want);
      for (let i = 0; i < 9; i++) expect(readFileSync(join(dir, `f/${i}.txt`), 'utf8')).toBe(body(i));
    }
  });

  it('a file in the way of a directory on disk, or a symlink out of the directory: that file fails, the others download', async () => {
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5/artifacts`)
        return json(res, 200, [
          { path: 'blocked/x.txt', download_url: `${srv.origin}/dl/1` },
          { path: 'link/y.txt', download_url: `${srv.origin}/dl/2` },
          { path: 'fine.txt', download_url: `${srv.origin}/dl/3` },
        ]);
      res.writeHead(200).end('data');
    });
    const parent = mkdtempSync(join(tmpdir(), 'bkci-hostile-'));
    const dir = join(parent, 'out');
    const outside = join(parent, 'outside');
    mkdirSync(dir);
    mkdirSync(outside);
    writeFileSync(join(dir, 'blocked'), 'a file');
    symlinkSync(outside, join(dir, 'link'));
    const r = await runBkci(['build', 'artifacts', '5', '--download', dir], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/"blocked\/x\.txt": (a file is in the way of a directory|a part of the path is a file)/);
    expect(r.stderr).toMatch(/"link\/y\.txt": link is a symbolic link out of the download directory/);
    expect(readdirSync(outside)).toEqual([]);
    expect(readFileSync(join(dir, 'fine.txt'), 'utf8')).toBe('data');
    expect(readFileSync(join(dir, 'blocked'), 'utf8')).toBe('a file');
    clean(r);
  });
});

describe('settings and arguments', () => {
  it('bad settings are exit 2 at once, naming the variable, before any request', async () => {
    srv = await serve((_req, res) => json(res, 200, build(5)));
    for (const [k, v, re] of [
      ['BKCI_HTTP_TIMEOUT', 'abc', /BKCI_HTTP_TIMEOUT="abc": expected a number of seconds/],
      ['BKCI_HTTP_TIMEOUT', '0', /BKCI_HTTP_TIMEOUT="0"/],
      ['BKCI_HTTP_TIMEOUT', '-5', /BKCI_HTTP_TIMEOUT="-5"/],
      ['BKCI_HTTP_TIMEOUT', '1e400', /BKCI_HTTP_TIMEOUT="1e400"/],
      ['BKCI_POLL_INTERVAL', 'often', /BKCI_POLL_INTERVAL="often"/],
      ['BKCI_POLL_INTERVAL', '0', /BKCI_POLL_INTERVAL="0"/],
      ['BUILDKITE_API_URL', 'not a url', /BUILDKITE_API_URL "not a url" is not a URL/],
    ] as const) {
      const argv = k === 'BKCI_POLL_INTERVAL' ? ['build', 'wait', '5'] : ['build', 'get', '5'];
      const r = await runBkci(argv, { env: { ...srv.env, [k]: v } });
      expect(r.code, `${k}=${v}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(re);
      clean(r);
    }
    expect(srv.requests).toEqual([]);
    const ok = await runBkci(['build', 'get', '5', '--json'], { env: { ...srv.env, BKCI_HTTP_TIMEOUT: '2m' } });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('build numbers are checked integers: never a request for builds/1e+23', async () => {
    srv = await serve((_req, res) => json(res, 200, build(5)));
    for (const arg of ['99999999999999999999999', '9007199254740993', '0', '-1', '1.5', '1e3', 'https://buildkite.com/o/p/builds/99999999999999999999']) {
      const r = await runBkci(['build', 'get', arg], { env: srv.env });
      expect(r.code, `${arg}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/expected a build number|not a build number/);
      clean(r);
    }
    for (const cmd of ['wait', 'logs', 'artifacts', 'cancel', 'retry', 'summary']) {
      const r = await runBkci(['build', cmd, '99999999999999999999999'], { env: srv.env });
      expect(r.code, `${cmd}: ${r.stderr}`).toBe(2);
    }
    expect(srv.requests).toEqual([]);
  });

  it('--concurrency is a whole number from 1 to 64', async () => {
    srv = await serve((_req, res) => json(res, 200, []));
    for (const v of ['0', 'x', '1.5', '65']) {
      const r = await runBkci(['build', 'artifacts', '5', '--download', tmpdir(), '--concurrency', v], { env: srv.env });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--concurrency/);
    }
  });
});

describe('build wait against an unreachable API', () => {
  it('says on each retry what it is waiting for, and honours --timeout', async () => {
    const port = await closedPort();
    const env = {
      BUILDKITE_API_TOKEN: TOKEN,
      BUILDKITE_ORGANIZATION_SLUG: 'org',
      BUILDKITE_PIPELINE_SLUG: 'pipe',
      BUILDKITE_API_URL: `http://127.0.0.1:${port}/v2`,
    };
    const r = await runBkci(['build', 'wait', '7', '--timeout', '2m'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot read build #7 \(.*ECONNREFUSED.*\); still waiting for it to finish: try 2 of 10 in \d+s, \d+m?\d*s? left of --timeout/);
    expect(r.stderr).toMatch(/bkci: timed out after 2m waiting for build #7: it could not be read/);
    // The fake clock: everything waited fits in the timeout (plus the last attempt's backoff).
    const waited = r.sleeps.reduce((a, b) => a + b, 0);
    expect(waited).toBeLessThanOrEqual(120_000);
    expect(waited).toBeGreaterThan(60_000);
    clean(r);
  });
});
