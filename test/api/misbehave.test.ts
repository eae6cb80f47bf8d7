// `bkci build ...` against servers that misbehave below and around the JSON: answers that are not
// HTTP, TLS asked of a plain-http port, tokens pasted with a line break, control characters in the
// API's messages, API URLs with odd slashes or IPv6 loopback. Real loopback servers throughout.
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { BUILDS, build, clean, hostileEach, json, rawServer, TOKEN, type Hostile } from '../helpers/hostile-server.js';

const serve = hostileEach();
let srv: Hostile;

describe('answers that are not HTTP/1.1', () => {
  const replies: [string, string][] = [
    ['not HTTP at all', 'garbage\r\n\r\n'],
    ['an HTTP/0.9-style bare body', '{"number":5,"state":"passed"}'],
    ['a status line without a number', 'HTTP/1.1 abc OK\r\n\r\n'],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nfoo bar\r\n\r\n{}'],
    ['a broken chunk size', 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'],
  ];
  for (const [name, reply] of replies)
    it(`${name}: named at once (exit 1), not retried`, async () => {
      const raw = await rawServer(reply);
      try {
        const r = await runBkci(['build', 'get', '5'], { env: raw.env });
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(
          new RegExp(`^bkci: GET /v2/organizations/org/pipelines/pipe/builds/5: the server at ${raw.origin} did not answer in HTTP/1\\.1 \\(.+\\)$`, 'm'),
        );
        expect(r.stderr).toMatch(/hint: check that --api-url \/ BUILDKITE_API_URL is the Buildkite REST API/);
        expect(r.sleeps).toEqual([]);
        expect(raw.connections()).toBe(1);
        clean(r);
      } finally {
        await raw.close();
      }
    });

  it('a create answered with garbage may have been processed: the build is looked for, and the failure named', async () => {
    const raw = await rawServer('garbage\r\n\r\n');
    try {
      const r = await runBkci(['build', 'submit', '--branch', 'main', '--commit', 'abc123'], { env: raw.env });
      expect(r.code).toBe(1);
      // The create, then the look-up (which fails the same way: no second create is sent).
      expect(raw.connections()).toBe(2);
      expect(r.stderr).toMatch(
        /POST \/v2\/organizations\/org\/pipelines\/pipe\/builds: the server at .* did not answer in HTTP\/1\.1 .*the request may or may not have been processed; looking for the build/,
      );
      expect(r.stderr).toMatch(/^bkci: GET \/v2\/organizations\/org\/pipelines\/pipe\/builds: the server at .* did not answer in HTTP\/1\.1/m);
      clean(r);
    } finally {
      await raw.close();
    }
  });
});

describe('TLS and the token', () => {
  it('an https API URL for a plain-http server: the handshake failure is named with the fix (exit 1)', async () => {
    srv = await serve((_req, res) => json(res, 200, build(5)));
    const r = await runBkci(['build', 'get', '5'], { env: { ...srv.env, BUILDKITE_API_URL: srv.origin.replace('http:', 'https:') + '/v2' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^bkci: GET \/v2\/organizations\/org\/pipelines\/pipe\/builds\/5: the TLS handshake with https:\/\/127\.0\.0\.1:\d+ failed: .*\(ERR_SSL_[A-Z_]+\)$/m,
    );
    expect(r.stderr).toMatch(/hint: if 127\.0\.0\.1:\d+ serves plain http, use an http:\/\/ URL/);
    expect(r.sleeps).toEqual([]);
    clean(r);
  });

  it('a token with a line break, tab, space or control character inside is exit 2 before any request, never shown', async () => {
    srv = await serve((_req, res) => json(res, 200, build(5)));
    const cases: [string, RegExp][] = [
      [`${TOKEN}\nsecond-line`, /contains a line break at character 33 of 44/],
      [`${TOKEN}\tx`, /contains a tab at character 33/],
      [`bkua_ab ${TOKEN}`, /contains a space at character 8/],
      [`${TOKEN}\u0000`, /contains a control character \(U\+0000\) at character 33/],
    ];
    for (const [token, said] of cases) {
      const r = await runBkci(['build', 'get', '5'], { env: { ...srv.env, BUILDKITE_API_TOKEN: token } });
      expect(r.code, token).toBe(2);
      expect(r.stderr).toMatch(/^bkci: the API token from BUILDKITE_API_TOKEN contains /m);
      expect(r.stderr).toMatch(said);
      expect(r.stderr).not.toContain('second-line');
      clean(r);
    }
    expect(srv.requests).toEqual([]);
    // Whitespace around the token is trimmed, as before.
    const ok = await runBkci(['build', 'get', '5'], { env: { ...srv.env, BUILDKITE_API_TOKEN: `  ${TOKEN}\n` } });
    expect(ok.code).toBe(0);
  });
});

describe('what the API says is shown safely', () => {
  it('escape sequences and line breaks in an error message are escaped, on one line', async () => {
    srv = await serve((_req, res) => json(res, 403, { message: 'no\n\u001b]0;pwned\u0007 \u001b[2J \u009b31m', errors: ['a\rb'] }));
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('(403): no \\u001b]0;pwned\\u0007 \\u001b[2J \\u009b31m (a b)\n');
    clean(r);
  });

  it('a body that is not JSON is quoted with its control characters escaped', async () => {
    srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>Sign in\u001b]52;c;cHduZWQ=\u0007\u0085</html>');
    });
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('with a body that is not JSON: "<html>Sign in\\u001b]52;c;cHduZWQ=\\u0007\\u0085</html>"');
    clean(r);
  });
});

describe('API URLs', () => {
  it('trailing slashes, a path prefix, a query or fragment: requests go to PREFIX/organizations/...', async () => {
    const paths: string[] = [];
    srv = await serve((_req, res, url) => {
      paths.push(url.pathname);
      json(res, 200, build(5, 'passed'));
    });
    for (const suffix of ['/v2', '/v2/', '/v2//', '/proxy/bk/v2///', '/v2?token=x', '/v2#top']) {
      const r = await runBkci(['build', 'get', '5'], { env: { ...srv.env, BUILDKITE_API_URL: srv.origin + suffix } });
      expect(r.code, suffix).toBe(0);
    }
    const p = '/organizations/org/pipelines/pipe/builds/5';
    expect(paths).toEqual([`/v2${p}`, `/v2${p}`, `/v2${p}`, `/proxy/bk/v2${p}`, `/v2${p}`, `/v2${p}`]);
  });

  it('an API URL without /v2 that meets a 404 says so in the hint', async () => {
    srv = await serve((_req, res) => json(res, 404, { message: 'Not Found' }));
    const r = await runBkci(['build', 'get', '5'], { env: { ...srv.env, BUILDKITE_API_URL: srv.origin } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: not found: build 5 of org\/pipe \(404\): Not Found$/m);
    expect(r.stderr).toMatch(/^hint: the API URL has no \/v2 in its path/m);
    clean(r);
  });

  it('IPv6 loopback: http://[::1]:PORT/v2 works, the token goes with it', async () => {
    let auth: string | undefined;
    srv = await serve(
      (req, res, url) => {
        auth = req.headers.authorization;
        if (url.pathname === `${BUILDS}/5`) return json(res, 200, build(5, 'passed'));
        json(res, 404, { message: 'Not Found' });
      },
      { host: '::1' },
    );
    expect(srv.origin).toMatch(/^http:\/\/\[::1\]:\d+$/);
    const r = await runBkci(['build', 'get', '5', '--json'], { env: srv.env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ number: 5, state: 'passed' });
    expect(auth).toBe(`Bearer ${TOKEN}`);
    // No warning about plain http on loopback.
    expect(r.stderr).not.toMatch(/unencrypted/);
  });
});

describe('build logs', () => {
  const jobs = [
    { id: 'j1', type: 'script', name: 'first', state: 'passed' },
    { id: 'j2', type: 'script', name: 'skipped-one', state: 'skipped' },
    { id: 'j3', type: 'script', name: 'third', state: 'failed' },
  ];
  const serveLogs = () =>
    serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, { ...build(5, 'failed'), jobs });
      if (url.pathname === `${BUILDS}/5/jobs/j2/log.txt`) return json(res, 404, { message: 'No log found' });
      const job = /\/jobs\/(j\d)\/log\.txt$/.exec(url.pathname)?.[1];
      if (job) return void res.writeHead(200, { 'content-type': 'text/plain' }).end(`log of ${job}\n`);
      json(res, 404, { message: 'Not Found' });
    });

  it('a job whose log is 404 (it never ran) prints as empty with a warning; the other logs print (exit 0)', async () => {
    srv = await serveLogs();
    const r = await runBkci(['build', 'logs', '5'], { env: srv.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('=== first (passed, job j1) ===\nlog of j1\n\n=== skipped-one (skipped, job j2) ===\n\n=== third (failed, job j3) ===\nlog of j3\n');
    expect(r.stderr).toMatch(/WARN +job j2 of build 5 has no log \(404: No log found\)/);
    clean(r);
  });

  it('with --json the array stays whole: the job without a log has an empty log', async () => {
    srv = await serveLogs();
    const r = await runBkci(['build', 'logs', '5', '--json'], { env: srv.env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { job: 'j1', name: 'first', state: 'passed', log: 'log of j1\n' },
      { job: 'j2', name: 'skipped-one', state: 'skipped', log: '' },
      { job: 'j3', name: 'third', state: 'failed', log: 'log of j3\n' },
    ]);
  });

  it('on a terminal, escape sequences that drive it (title, clipboard, clear, timestamps) are dropped; piped, the log passes byte for byte', async () => {
    const log = '\u001b_bk;t=1700000000000\u0007hello \u001b[31mred\u001b[0m\n\u001b]0;pwned\u0007\u001b]52;c;cHduZWQ=\u001b\\\u001b[2Jdone\n';
    srv = await serve((_req, res, url) => {
      if (url.pathname === `${BUILDS}/5`) return json(res, 200, { ...build(5, 'passed'), jobs: [jobs[0]] });
      // Cut inside the sequences: the filter works across parts.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(log.slice(0, 7));
      setTimeout(() => res.end(log.slice(7)), 20);
    });
    const tty = await runBkci(['build', 'logs', '5', '--job', 'j1'], { env: srv.env, tty: true });
    expect(tty.code, tty.stderr).toBe(0);
    // runBkci's terminal has colour off (as with NO_COLOR): the colours go too.
    expect(tty.stdout).toBe('hello red\ndone\n');
    const piped = await runBkci(['build', 'logs', '5', '--job', 'j1'], { env: srv.env });
    expect(piped.stdout).toBe(log);
    const asJson = await runBkci(['build', 'logs', '5', '--json'], { env: srv.env, tty: true });
    expect(JSON.parse(asJson.stdout)[0].log).toBe(log);
  });
});

describe('artifact downloads', () => {
  it('a signed URL the object store refuses (S3 XML 403) names its reason; the token never goes to the store', async () => {
    const { mkdtempSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'bkci-s3-'));
    const storageAuth: (string | undefined)[] = [];
    srv = await serve((req, res, url) => {
      // The same server under another name (localhost) is another origin: the storage host.
      const storage = srv.origin.replace('127.0.0.1', 'localhost');
      if (url.pathname === `${BUILDS}/5/artifacts`)
        return json(res, 200, [
          { id: 'a1', path: 'out/report.txt', file_size: 4, sha1sum: 'a17c9aaa61e80a1bf71d0d850af4e5baa9800bbd', download_url: `${srv.origin}/dl/a1` },
        ]);
      if (url.pathname === '/dl/a1') return void res.writeHead(302, { location: `${storage}/bucket/a1?X-Amz-Signature=old` }).end();
      if (url.pathname === '/bucket/a1') {
        storageAuth.push(req.headers.authorization);
        res.writeHead(403, { 'content-type': 'application/xml' });
        return void res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      }
      json(res, 404, { message: 'Not Found' });
    });
    const r = await runBkci(['build', 'artifacts', '5', '--download', dir], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/"out\/report\.txt": the artifact storage at http:\/\/localhost:\d+ answered 403: Request has expired \(AccessDenied\)/);
    expect(r.stderr).toMatch(/hint: signed download URLs expire; run the command again/);
    expect(storageAuth).toEqual([undefined]);
    expect(readdirSync(dir)).toEqual([]);
    clean(r);
  });
});
