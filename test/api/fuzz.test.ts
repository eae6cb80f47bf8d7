// Fuzz: the API commands against a loopback server whose every answer is mutated (status, headers,
// body, connection). Seeded and bounded; BKCI_FUZZ_CASES=N runs more (BKCI_FUZZ_SEED another seed).
// Every outcome must be exit 0, 1 or 2 with a clear `bkci:` message: never an internal error, a
// stack trace, a hang, the token, or a file written outside the download directory.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { BUILDS, build, hostile, TOKEN, type Hostile } from '../helpers/hostile-server.js';
import { randomInts } from '../helpers/random.js';

// ~20 s here for the default 150 (about 0.1 s a case, most of it the command's own start).
const CASES = Number(process.env.BKCI_FUZZ_CASES ?? 150);
const SEED = Number(process.env.BKCI_FUZZ_SEED ?? 20261207);

type Rand = (k: number) => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[r(xs.length)]!;

const COMMANDS: string[][] = [
  ['build', 'get', '5'],
  ['build', 'get', '5', '--json'],
  ['build', 'list', '--limit', '3', '--json'],
  ['build', 'wait', '5', '--timeout', '20s'],
  ['build', 'logs', '5'],
  ['build', 'logs', '5', '--json'],
  ['build', 'artifacts', '5', '--json'],
  ['build', 'artifacts', '5', '--download', 'DIR', '--concurrency', '2'],
  ['build', 'cancel', '5'],
  ['build', 'submit', '--branch', 'main'],
  ['build', 'summary', '5', '--json'],
  ['build', 'retry', '5'],
  ['queue', 'status', 'gpu'],
];

// A plausible answer for the request, before mutation.
function plausible(url: URL, origin: string): unknown {
  const p = url.pathname;
  if (p.endsWith('/artifacts'))
    return ['a.txt', 'dir/b.bin'].map((path, i) => ({
      id: `art-${i}`,
      job_id: 'job-5',
      path,
      file_size: 4,
      sha1sum: createHash('sha1').update('data').digest('hex'),
      download_url: `${origin}/dl/${i}`,
    }));
  if (p.endsWith('/agents')) return [{ id: 'a1', name: 'gpu-0', connection_state: 'connected', meta_data: ['queue=gpu', 'gpu=0'], job: null }];
  if (p === BUILDS) return [build(5, 'passed'), build(4, 'failed')];
  if (p.endsWith('/retry')) return { id: 'job-6', type: 'script', state: 'scheduled' };
  return build(5, pick(randomInts(p.length), ['passed', 'failed', 'running']));
}

// Mutations of a JSON value: fields dropped or retyped, huge or odd numbers, deep nesting.
function mutateValue(r: Rand, v: unknown, depth = 0): unknown {
  const odd = [null, true, 0, -1, 1e308, 1e23, 'x', '', '\u0000', 'bkua_' + 'z'.repeat(30), [], {}, 'http://[::1', '../../etc/passwd'];
  if (depth > 4 || r(4) === 0) return pick(r, odd);
  if (Array.isArray(v)) {
    const out = v.map((x) => (r(3) === 0 ? mutateValue(r, x, depth + 1) : x));
    if (r(5) === 0) out.push(mutateValue(r, v[0], depth + 1));
    return r(8) === 0 ? [] : out;
  }
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    for (const k of Object.keys(out)) {
      const c = r(6);
      if (c === 0) delete out[k];
      else if (c === 1) out[k] = mutateValue(r, out[k], depth + 1);
    }
    return out;
  }
  return pick(r, odd);
}

function deep(n: number): string {
  return '['.repeat(n) + ']'.repeat(n);
}

// One mutated answer written to res.
function answer(r: Rand, req: IncomingMessage, res: ServerResponse, url: URL, origin: string): void {
  const kind = r(20);
  if (kind === 0) return void req.socket.destroy();
  // Below HTTP: bytes that are not an HTTP/1.1 answer at all (a broken proxy, another protocol).
  if (kind === 1 && r(2) === 0)
    return void req.socket.end(
      pick(r, [
        'garbage\r\n\r\n',
        'HTTP/1.1 abc OK\r\n\r\n',
        'HTTP/1.1 200 OK\r\nfoo bar\r\n\r\n{}',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
        '{"number":5}',
        'SSH-2.0-OpenSSH_9.6\r\n',
      ]),
    );
  // Download endpoints: the bytes, sometimes wrong, sometimes a redirect.
  if (url.pathname.startsWith('/dl/')) {
    const c = r(6);
    if (c === 0)
      return void res.writeHead(302, { location: pick(r, ['http://[bad', 'file:///etc/passwd', `${origin}/dl/0`, '', 'javascript:alert(1)']) }).end();
    if (c === 1) return void res.writeHead(pick(r, [403, 404, 500, 503])).end('{"message":"no"}');
    if (c === 2) return void res.writeHead(200, { 'content-length': '100' }).end('da');
    return void res.writeHead(200).end(c === 3 ? 'dat?' : 'data');
  }
  const status = kind < 12 ? 200 : pick(r, [200, 201, 204, 301, 302, 304, 307, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 599]);
  const headers: Record<string, string> = { 'content-type': pick(r, ['application/json', 'application/json; charset=utf-8', 'text/html', 'text/plain', '']) };
  if (r(4) === 0)
    headers.link = pick(r, [
      '<http://[oops>; rel="next"',
      `<${origin}${url.pathname}?page=2>; rel="next"`,
      '<https://evil.example/x>; rel="next"',
      'garbage',
      '<>; rel=next',
      `<${url.href}>; rel="next"`,
    ]);
  if (r(5) === 0) headers['retry-after'] = pick(r, ['1', '0', '-3', 'soon', '99999', 'Wed, 21 Oct 2015 07:28:00 GMT', '1e400']);
  if (r(5) === 0) headers['ratelimit-reset'] = pick(r, ['0', '1', '2', 'NaN', '-1', '1e12', '']);
  if (status >= 300 && status < 400 && r(2) === 0)
    headers.location = pick(r, ['http://[::1', '/v2/elsewhere', 'https://other.example/v2', '', '%%%', `${origin}${url.pathname}`]);
  let body: Buffer;
  const b = r(10);
  const value = plausible(url, origin);
  if (b === 0) body = Buffer.from('');
  else if (b === 1) body = Buffer.from(JSON.stringify(value).slice(0, r(40)));
  else if (b === 2) body = Buffer.from(deep(2 + r(20_000)));
  else if (b === 3) body = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x7b]);
  else if (b === 4)
    body = Buffer.from(
      JSON.stringify({ message: pick(r, ['x'.repeat(r(5000)), 'no\u001b]0;pwned\u0007\u001b[2J\u009b31m\nsecond line']), errors: [{ field: TOKEN }] }),
    );
  else if (b === 5 && url.pathname.endsWith('/log.txt'))
    // A log that tries to drive the terminal (shown through the terminal filter with tty below).
    body = Buffer.from('\u001b_bk;t=1700000000000\u0007step\u001b]52;c;cHduZWQ=\u0007\u001b[2J\u001bc\u000edone\n');
  else if (b <= 6) body = Buffer.from(JSON.stringify(mutateValue(r, value)));
  else body = Buffer.from(JSON.stringify(value));
  if (r(12) === 0) {
    headers['content-encoding'] = pick(r, ['gzip', 'br', 'deflate', 'zstd', 'gzip, gzip']);
    body = r(2) === 0 ? gzipSync(body) : body;
  }
  if (r(15) === 0) headers['content-length'] = String(body.length + 10);
  res.writeHead(status, Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== '')));
  if (r(25) === 0) {
    // A slow body: bounded by BKCI_HTTP_TIMEOUT below.
    res.write(body.subarray(0, 1));
    const t = setTimeout(() => res.end(body.subarray(1)), 800);
    res.on('close', () => clearTimeout(t));
    return;
  }
  res.end(status === 204 || status === 304 ? undefined : body);
}

describe(`API commands against mutated answers (${CASES} cases, seed ${SEED})`, () => {
  let srv: Hostile;
  let current: Rand = randomInts(SEED);
  beforeAll(async () => {
    srv = await hostile((req, res, url) => answer(current, req, res, url, srv.origin));
  });
  afterAll(() => srv.close());

  it('every outcome is exit 0, 1 or 2 with a clear message', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'bkci-fuzz-'));
    const seen = new Map<number, number>();
    for (let i = 0; i < CASES; i++) {
      current = randomInts(SEED + i * 7919);
      const r = current;
      const argv = pick(r, COMMANDS).map((a) => (a === 'DIR' ? join(parent, `out-${i}`) : a));
      const where = `case ${i} (seed ${SEED + i * 7919}): bkci ${argv.join(' ')}`;
      // Half the cases on a (fake) terminal: the log filter and progress display are exercised too.
      const tty = r(2) === 0;
      const run = runBkci(argv, { env: { ...srv.env, BKCI_HTTP_TIMEOUT: '0.3', BKCI_POLL_INTERVAL: '10ms' }, tty });
      let timer: NodeJS.Timeout | undefined;
      const raced = await Promise.race([run, new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), 20_000)))]);
      // bkci's own spinner on a terminal redraws its line with CR ESC [ K: read as a new line.
      const res = raced === 'hang' ? raced : { ...raced, stderr: raced.stderr.replace(/\r\u001b\[K/g, '\n') };
      clearTimeout(timer);
      expect(res, `${where}: hung`).not.toBe('hang');
      if (res === 'hang') return;
      seen.set(res.code, (seen.get(res.code) ?? 0) + 1);
      expect([0, 1, 2], `${where}: exit ${res.code}\n${res.stderr}`).toContain(res.code);
      expect(res.stderr, where).not.toMatch(/internal error/);
      expect(res.stderr, where).not.toMatch(/^\s+at /m);
      expect(res.stderr, where).not.toMatch(/\[object Object\]/);
      expect(res.stdout + res.stderr, where).not.toContain(TOKEN);
      expect(res.stderr, where).not.toMatch(/bkua_z{30}/);
      // Nothing the server sent drives the terminal: stderr never, stdout not on a terminal.
      expect(res.stderr, where).not.toMatch(/[\u001b\u0007\u000e\u009b]/);
      if (tty) expect(res.stdout.replace(/\u001b\[[0-9;:]*m/g, ''), where).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
      if (res.code !== 0) expect(res.stderr, where).toMatch(/^bkci: \S/m);
    }
    // Nothing was written beside the download directories.
    expect(readdirSync(parent).every((f) => /^out-\d+$/.test(f))).toBe(true);
    rmSync(parent, { recursive: true, force: true });
    // The mutations reach every kind of outcome.
    expect([...seen.keys()].sort()).toEqual([0, 1, 2]);
  }, 120_000);
});
