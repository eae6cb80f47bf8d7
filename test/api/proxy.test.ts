// What a real proxy, captive portal or broken Buildkite does, each over loopback: an HTML page
// with 200, JSON cut short, a body shorter than its Content-Length, a connection reset in the
// middle of a body, redirects to other hosts and in loops, compressed bodies (and bombs), a 5xx on
// cancel, a build that never finishes, branch names with Unicode and escape sequences. Every
// outcome: exit 0, 1 or 2 with a `bkci:` line naming the request, never a stack trace, a hang, the
// token, or partial JSON on stdout.
import { deflateSync, gzipSync, brotliCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { BUILDS, build, clean, hostile, hostileEach, json, TOKEN, type Hostile } from '../helpers/hostile-server.js';

const serve = hostileEach();
let srv: Hostile;
const GET5 = `GET ${BUILDS}/5`.replace(/\//g, '\\/');

const portal = '<!DOCTYPE html><html><head><title>Sign in to the Wi-Fi</title></head><body><form>...</form></body></html>';

describe('a captive portal or proxy login page (200, HTML)', () => {
  for (const argv of [
    ['build', 'get', '5', '--json'],
    ['build', 'list', '--json'],
    ['build', 'logs', '5', '--json'],
    ['build', 'artifacts', '5', '--json'],
    ['queue', 'status', 'gpu', '--json'],
    ['build', 'wait', '5', '--json'],
    ['build', 'cancel', '5', '--json'],
  ])
    it(`${argv.slice(0, 2).join(' ')}: exit 1 naming the request and quoting the page, stdout empty`, async () => {
      srv = await serve((_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end(portal));
      const r = await runBkci(argv, { env: srv.env });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/^bkci: .*(GET|PUT) \/v2\/organizations\/org\/\S+ with a body that is not JSON: "<!DOCTYPE html>/m);
      expect(r.stdout).toBe('');
      clean(r, { json: true });
    });
});

describe('a proxy page in place of a log', () => {
  it('the build reads fine but its log is an HTML page: not printed as the log; exit 1 naming the request, JSON whole', async () => {
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(portal);
    });
    const text = await runBkci(['build', 'logs', '5', '--job', 'job-5'], { env: srv.env });
    expect(text.code).toBe(1);
    expect(text.stdout).toBe('');
    expect(text.stderr).toMatch(
      new RegExp(`^bkci: ${GET5}\\/jobs\\/job-5\\/log\\.txt: the answer is an HTML page \\(text\\/html; charset=utf-8\\), not a log: "<!DOCTYPE html>`, 'm'),
    );
    clean(text);
    const asJson = await runBkci(['build', 'logs', '5', '--json'], { env: srv.env });
    expect(asJson.code).toBe(1);
    expect((JSON.parse(asJson.stdout) as { log: string; error: string }[])[0]).toMatchObject({
      log: '',
      error: expect.stringMatching(/an HTML page/) as unknown,
    });
    clean(asJson, { json: true });
  });
});

describe('bodies cut short', () => {
  it('JSON cut in the middle (a whole, short answer): exit 1, not JSON, naming the request', async () => {
    srv = await serve((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"b-5","number":5,"sta'));
    const r = await runBkci(['build', 'get', '5', '--json'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^bkci: the API answered ${GET5} with a body that is not JSON: "\\{\\\\"id\\\\":\\\\"b-5\\\\",\\\\"number\\\\":5,\\\\"sta"`, 'm'),
    );
    clean(r, { json: true });
  });

  for (const [name, cut] of [
    [
      'a body shorter than its Content-Length',
      (res: import('node:http').ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' });
        res.write('{"id":"b-5","number":5,');
        setTimeout(() => res.socket?.end(), 20);
      },
    ],
    [
      'a connection reset in the middle of the body',
      (res: import('node:http').ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"id":"b-5","number":5,');
        setTimeout(() => res.socket?.resetAndDestroy(), 20);
      },
    ],
  ] as const)
    it(`${name}: retried, then exit 1 naming the request (never partial JSON)`, async () => {
      srv = await serve((_req, res) => cut(res));
      const r = await runBkci(['build', 'get', '5', '--json'], { env: srv.env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^bkci: ${GET5}: .* while reading the answer \\(gave up after 5 attempts\\)$`, 'm'));
      expect(srv.requests).toHaveLength(5);
      expect(r.stdout).toBe('');
      clean(r, { json: true });
    });

  it('a log whose body ends before its Content-Length: what arrived is printed, then exit 1 naming the request', async () => {
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
      res.write('line one\nline two\n');
      setTimeout(() => res.socket?.end(), 20);
    });
    const r = await runBkci(['build', 'logs', '5', '--job', 'job-5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('line one\nline two\n');
    expect(r.stderr).toMatch(new RegExp(`^bkci: ${GET5}\\/jobs\\/job-5\\/log\\.txt: the answer broke off after 18 bytes`, 'm'));
    clean(r);
  });
});

describe('redirects', () => {
  for (const status of [301, 302, 303, 307, 308])
    it(`${status} to another host: refused, the token never sent there (exit 1)`, async () => {
      const other = await hostile((req, res) => json(res, 200, { ...build(5), auth: req.headers.authorization ?? null }));
      try {
        srv = await serve((_req, res) => void res.writeHead(status, { location: `${other.origin}/v2/organizations/org/pipelines/pipe/builds/5` }).end());
        for (const argv of [
          ['build', 'get', '5', '--json'],
          ['build', 'cancel', '5', '--json'],
          ['build', 'submit', '--branch', 'main', '--commit', 'abc', '--json'],
        ]) {
          const r = await runBkci(argv, { env: srv.env });
          expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(1);
          expect(r.stderr).toMatch(
            new RegExp(
              `(redirected to ${other.origin.replace(/[.]/g, '\\.')}/v2/organizations/org/pipelines/pipe/builds/5 \\(${status}\\); not following it with the token|not resending a POST as a GET)`,
            ),
          );
          clean(r, { json: true });
        }
        expect(other.requests).toEqual([]);
      } finally {
        await other.close();
      }
    });

  it('a redirect loop on the API host: stops after 5 hops, naming the request (exit 1)', async () => {
    srv = await serve((_req, res, url) => void res.writeHead(302, { location: url.pathname.endsWith('/5') ? `${BUILDS}/5/` : `${BUILDS}/5` }).end());
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^bkci: GET \/v2\/organizations\/org\/pipelines\/pipe\/builds\/5\/?: more than 5 redirects$/m);
    expect(srv.requests.length).toBeLessThanOrEqual(6);
    clean(r);
  });

  it('an artifact download redirect loop: that file fails, naming it (exit 1)', async () => {
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5/artifacts`) return json(res, 200, [{ id: 'a', path: 'x.txt', download_url: `${srv.origin}/dl/a` }]);
      res.writeHead(302, { location: url.pathname === '/dl/a' ? '/dl/b' : '/dl/a' }).end();
    });
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const r = await runBkci(['build', 'artifacts', '5', '--download', mkdtempSync(join(tmpdir(), 'bkci-loop-'))], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/"x\.txt": too many redirects downloading \/dl\/a/);
    clean(r);
  });
});

describe('compressed bodies', () => {
  const body = JSON.stringify(build(5, 'passed'));
  for (const [encoding, data] of [
    ['gzip', gzipSync(body)],
    ['deflate', deflateSync(body)],
    ['br', brotliCompressSync(body)],
    ['GZIP', gzipSync(body)],
  ] as const)
    it(`${encoding}: read as JSON`, async () => {
      srv = await serve((_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding }).end(data));
      const r = await runBkci(['build', 'get', '5', '--json'], { env: srv.env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ number: 5, state: 'passed' });
    });

  it('a deflate bomb and a brotli bomb are capped at 64 MiB after decoding (exit 1)', async () => {
    const big = Buffer.alloc(80 * 1024 * 1024, 0x20);
    for (const [encoding, bomb] of [
      ['deflate', deflateSync(big)],
      ['br', brotliCompressSync(big)],
    ] as const) {
      srv = await serve((_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding }).end(bomb));
      const r = await runBkci(['build', 'get', '5'], { env: srv.env });
      expect(r.code, encoding).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^bkci: ${GET5}: the answer is larger than 64 MiB`, 'm'));
      clean(r);
    }
  });

  it('an encoding bkci does not know is named (exit 1)', async () => {
    srv = await serve((_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'zstd' }).end('xx'));
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown content encoding: zstd/);
    clean(r);
  });
});

describe('cancel and wait against a failing API', () => {
  it('a 5xx on cancel (PUT, idempotent): retried, then exit 1 naming the request', async () => {
    srv = await serve((_req, res) => json(res, 503, { message: 'maintenance' }));
    const r = await runBkci(['build', 'cancel', '5', '--json'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^bkci: PUT \/v2\/organizations\/org\/pipelines\/pipe\/builds\/5\/cancel: the API answered 503: maintenance \(gave up after 5 attempts\)$/m,
    );
    expect(srv.requests.filter((q) => q.method === 'PUT')).toHaveLength(5);
    expect(r.stdout).toBe('');
    clean(r, { json: true });
  });

  it('a build that never finishes: --timeout ends the wait (exit 1), everything waited within it', async () => {
    srv = await serve((_req, res) => json(res, 200, build(5, 'running')));
    const r = await runBkci(['build', 'wait', '5', '--timeout', '10m', '--json'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^bkci: timed out after 10m waiting for build #5 \(still running, 0\/1 jobs done\)$/m);
    expect(r.sleeps.reduce((a, b) => a + b, 0)).toBe(600_000);
    expect(r.stdout).toBe('');
    clean(r, { json: true });
  });
});

describe('branch names', () => {
  const branches = ['feature/ünïcödé-😀', 'fix/\u001b]0;pwned\u0007title', 'a\u009b31mb', 'rtl-\u202eevil', 'x'.repeat(300)];
  it('Unicode goes to the API as it is, in JSON and in the query; escape sequences never reach stderr raw', async () => {
    const seen: { body?: string; query?: string }[] = [];
    srv = await serve(async (req, res, url) => {
      if (req.method === 'POST') {
        let body = '';
        for await (const c of req) body += String(c);
        seen.push({ body });
        const b = JSON.parse(body) as { branch: string };
        return json(res, 201, { ...build(9, 'scheduled'), branch: b.branch, message: b.branch });
      }
      seen.push({ query: url.searchParams.get('branch') ?? undefined });
      json(res, 200, [{ ...build(9, 'passed'), branch: url.searchParams.get('branch') }]);
    });
    for (const branch of branches) {
      seen.length = 0;
      const r = await runBkci(['build', 'submit', '--branch', branch, '--commit', 'abc123', '--json'], { env: srv.env });
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(seen[0]!.body!) as { branch: string }).branch).toBe(branch);
      expect((JSON.parse(r.stdout) as { branch: string }).branch).toBe(branch);
      clean(r, { json: true });
      const l = await runBkci(['build', 'list', '--branch', branch], { env: srv.env, tty: true });
      expect(l.code, l.stderr).toBe(0);
      expect(seen.at(-1)!.query).toBe(branch);
      expect(l.stdout).not.toMatch(/[\u001b\u0007\u009b]/);
      clean(l);
    }
  });

  it('a create that may have been made with such a branch: the hint quotes the branch safely', async () => {
    srv = await serve((req, res) => {
      if (req.method === 'POST') return void res.writeHead(201, { 'content-type': 'text/html' }).end(portal);
      json(res, 200, []);
    });
    const r = await runBkci(['build', 'submit', '--branch', 'fix/\u001b]0;pwned\u0007x', '--commit', 'abc123'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("check with `bkci build list --branch $'fix/\\x1b]0;pwned\\x07x'` before submitting again");
    // The hint's word is the branch again when a shell reads it.
    const { execFileSync } = await import('node:child_process');
    expect(execFileSync('bash', ['-c', "printf %s $'fix/\\x1b]0;pwned\\x07x'"]).toString()).toBe('fix/\u001b]0;pwned\u0007x');
    clean(r);
  });
});

it('the token is not in any of these outputs (it is in the environment only)', () => {
  expect(TOKEN).toMatch(/^bkua_/);
});

describe('a proxy asking for its own credentials (407)', () => {
  it('build get and build submit: exit 2 naming the proxy and --api-url, nothing on stdout, the token never shown', async () => {
    srv = await serve((_req, res) => void res.writeHead(407, { 'proxy-authenticate': 'Basic realm="corp"' }).end('Proxy Authentication Required'));
    for (const argv of [
      ['build', 'get', '5', '--json'],
      ['build', 'submit', '--branch', 'main', '--json'],
    ]) {
      const r = await runBkci(argv, { env: srv.env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        /^bkci: a proxy at http:\/\/127\.0\.0\.1:\d+ asks for its own credentials for (GET|POST) \/v2\/\S+ \(407 Proxy Authentication Required\)/m,
      );
      expect(r.stderr).toMatch(/^hint: .*--api-url/m);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toContain(TOKEN);
      clean(r, { json: true });
    }
  });
});
