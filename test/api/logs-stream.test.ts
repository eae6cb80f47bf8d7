// `bkci build logs` when the log's server or stdout's reader misbehaves: an error after part of the
// output was written, secrets on lines of any length, a reader slower than the HTTP timeout. Real
// loopback servers throughout.
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { runBkci } from '../helpers/io.js';
import { BIN, BUILDS, build, clean, hostileEach, json, TOKEN, type Hostile } from '../helpers/hostile-server.js';

const serve = hostileEach();
let srv: Hostile;

const jobs = [
  { id: 'j1', type: 'script', name: 'first', state: 'passed' },
  { id: 'j2', type: 'script', name: 'second', state: 'failed' },
  { id: 'j3', type: 'script', name: 'third', state: 'passed' },
];
const LOG2 = `/v2/organizations/org/pipelines/pipe/builds/5/jobs/j2/log.txt`;

describe('build logs --json when a later log fails', () => {
  // j1's log arrives; j2's fails the way `how` says.
  const failing = (how: (res: import('node:http').ServerResponse) => void) =>
    serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, { ...build(5, 'failed'), jobs });
      if (url.pathname.endsWith('/j1/log.txt')) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('log of j1\n');
      if (url.pathname.endsWith('/j2/log.txt')) return how(res);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('log of j3\n');
    });

  it('a 5xx on the second log (after the array was started): stdout is whole JSON naming the error, exit 1', async () => {
    srv = await failing((res) => json(res, 500, { message: 'the log store is down' }));
    const r = await runBkci(['build', 'logs', '5', '--json'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^bkci: GET ${LOG2}: the API answered 500: the log store is down \\(gave up after 5 attempts\\)$`, 'm'));
    const out = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(out).toHaveLength(2);
    expect(out[0]).toEqual({ job: 'j1', name: 'first', state: 'passed', log: 'log of j1\n' });
    expect(out[1]).toMatchObject({ job: 'j2', name: 'second', state: 'failed', log: '' });
    expect(out[1]!.error).toMatch(/^GET \/v2\/.*\/j2\/log\.txt: the API answered 500/);
    clean(r, { json: true });
  });

  it('a connection reset in the middle of the second log: what arrived is kept, the JSON closed, exit 1', async () => {
    srv = await failing((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // A line without its end (held by the redactor) and then the connection dies.
      res.write('first line\npartial "quoted" line');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const r = await runBkci(['build', 'logs', '5', '--json'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^bkci: GET ${LOG2}: the answer broke off after 32 bytes`, 'm'));
    const out = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(out.map((o) => o.job)).toEqual(['j1', 'j2']);
    expect(out[1]!.log).toBe('first line\npartial "quoted" line');
    expect(out[1]!.error).toMatch(/the answer broke off after 32 bytes/);
    clean(r, { json: true });
  });

  it('a 403 on the second log (a token without read_build_logs): whole JSON, exit 2 naming the scope', async () => {
    srv = await failing((res) => json(res, 403, { message: 'Forbidden' }));
    const r = await runBkci(['build', 'logs', '5', '--json'], { env: srv.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/read_build_logs/);
    expect((JSON.parse(r.stdout) as unknown[]).length).toBe(2);
    clean(r, { json: true });
  });

  it('without --json the text printed stays, and the error is named', async () => {
    srv = await failing((res) => json(res, 502, { message: 'bad gateway' }));
    const r = await runBkci(['build', 'logs', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('=== first (passed, job j1) ===\nlog of j1\n\n=== second (failed, job j2) ===\n');
    expect(r.stderr).toMatch(new RegExp(`^bkci: GET ${LOG2}: the API answered 502`, 'm'));
    clean(r);
  });
});

describe('secrets on long lines', () => {
  // A log of one very long line (no line break for megabytes: a progress bar, minified output)
  // carrying secrets, cut by the server right inside each of them.
  const secrets = [
    ['Authorization: Bearer ', 'sekr3t-value.with~dots/and+signs='],
    ['HF_TOKEN=', 'hf_abcdefghijklmnopqrstuvwxyz012345'],
    ['"password": "', 'correct-horse-battery-staple-99'],
    ['token: ', 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg'],
    [' ', TOKEN],
  ] as const;

  for (const pad of [70 * 1024, 200 * 1024]) {
    it(`a ${pad / 1024} KiB line: every secret is redacted wherever the network cuts it`, async () => {
      srv = await serve(async (_req, res, url) => {
        if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
        res.writeHead(200, { 'content-type': 'text/plain' });
        for (const [key, value] of secrets) {
          // Padding made of characters a token could contain, then the key, cut before the value and inside it.
          res.write('x'.repeat(pad) + ' ' + key);
          await new Promise((r) => setTimeout(r, 5));
          res.write(value.slice(0, 5));
          await new Promise((r) => setTimeout(r, 5));
          res.write(value.slice(5) + ' ');
          await new Promise((r) => setTimeout(r, 5));
        }
        res.end('end\n');
      });
      const r = await runBkci(['build', 'logs', '5', '--job', 'job-5'], { env: srv.env });
      expect(r.code, r.stderr).toBe(0);
      for (const [, value] of secrets) expect(r.stdout.includes(value.slice(5)), `${value} leaked`).toBe(false);
      const expected = secrets.map(([key]) => 'x'.repeat(pad) + ' ' + key + '[REDACTED] ').join('') + 'end\n';
      expect(r.stdout === expected, firstDifference(r.stdout, expected)).toBe(true);
    });
  }

  it('a log of one endless line goes through in bounded memory (parts printed before it ends)', async () => {
    let printedBeforeEnd = false;
    let printed = 0;
    srv = await serve(async (_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 40; i++) res.write('y'.repeat(64 * 1024));
      // The client has printed most of the line before its end arrives.
      for (let i = 0; i < 200 && printed < 2 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 10));
      printedBeforeEnd = printed >= 2 * 1024 * 1024;
      res.end('\n');
    });
    const out = new PassThrough();
    out.on('data', (c: Buffer) => (printed += c.length));
    const code = await runCli(['build', 'logs', '5', '--job', 'job-5'], ioFor(out, srv.env));
    expect(code).toBe(0);
    expect(printedBeforeEnd).toBe(true);
    expect(printed).toBe(40 * 64 * 1024 + 1);
  });
});

describe('a stdout reader slower than the HTTP timeout', () => {
  // The server sends the log steadily, well above the minimum rate (16 KiB per second here): 8 KiB
  // every 50 ms for 2 s. The reader is what is slow.
  const part = 'z'.repeat(8191) + '\n';
  const PARTS = 40;
  const fast = () =>
    serve(async (_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < PARTS && !res.destroyed; i++) {
        res.write(part);
        await new Promise((r) => setTimeout(r, 50));
      }
      res.end('done\n');
    });

  it('a write that blocks (stdout a full blocking pipe: write(2) waits for the reader) is not the server being silent', async () => {
    srv = await fast();
    let got = 0;
    let writes = 0;
    // Each of the first writes blocks the whole process for twice the HTTP timeout, as writeSync on
    // a blocking pipe does while its reader does not read.
    const blocking = new Writable({
      write(chunk: Buffer, _enc, cb) {
        got += chunk.length;
        if (writes++ < 2) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
        cb();
      },
    });
    const err = new PassThrough();
    let stderr = '';
    err.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await runCli(['build', 'logs', '5', '--job', 'job-5'], { ...ioFor(blocking, { ...srv.env, BKCI_HTTP_TIMEOUT: '1' }), stderr: err });
    expect(code, stderr).toBe(0);
    expect(got).toBe(PARTS * part.length + 5);
  }, 30_000);

  it('a real bkci whose stdout reader stops reading for longer than the timeout: the log arrives whole', async () => {
    srv = await fast();
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [BIN, 'build', 'logs', '5', '--job', 'job-5'], {
      env: { PATH: process.env.PATH ?? '', ...srv.env, BKCI_HTTP_TIMEOUT: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let bytes = 0;
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.pause();
    // Not a byte read for three timeouts.
    setTimeout(() => {
      child.stdout.on('data', (c: Buffer) => (bytes += c.length));
      child.stdout.resume();
    }, 3000);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, stderr).toBe(0);
    expect(bytes).toBe(PARTS * part.length + 5);
  }, 30_000);
});

// Where two long texts first differ, shown briefly (not megabytes of padding).
function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `lengths ${a.length} and ${b.length}, first difference at ${i}: ${JSON.stringify(a.slice(Math.max(0, i - 40), i + 40))} vs ${JSON.stringify(b.slice(Math.max(0, i - 40), i + 40))}`;
}

function ioFor(stdout: Writable, env: Record<string, string>): Parameters<typeof runCli>[1] {
  const err = new PassThrough();
  err.resume();
  return {
    stdout,
    stderr: err,
    stdin: process.stdin,
    env,
    cwd: process.cwd(),
    stdoutIsTTY: false,
    stderrIsTTY: false,
    color: false,
    now: () => new Date(),
    sleep: async () => undefined,
  };
}
