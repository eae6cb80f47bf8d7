// Rate limits and pages from a server that says odd things: a Retry-After that cannot be read, is
// negative or asks for a day; a 429 storm while a build is submitted and waited for; lists whose
// pages never end. Real loopback servers; the clock is runBkci's fake one (sleeps recorded).
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { BUILDS, build, clean, hostileEach, json, type Hostile } from '../helpers/hostile-server.js';

const serve = hostileEach();
let srv: Hostile;

// GET builds/5 answers 429 with `headers` `times` times, then the build.
const limited = (headers: Record<string, string>, times = 1) => {
  let left = times;
  return serve((_req, res, url) => {
    if (url.pathname !== `${BUILDS}/5`) return json(res, 404, { message: 'Not Found' });
    if (left-- > 0) return json(res, 429, { message: 'You have exceeded your API rate limit' }, headers);
    json(res, 200, build(5, 'passed'));
  });
};

describe('Retry-After that says nothing usable', () => {
  for (const [name, headers] of [
    ['negative', { 'retry-after': '-5' }],
    ['not a number or a date', { 'retry-after': 'soon' }],
    ['absent', {}],
    ['a negative RateLimit-Reset', { 'ratelimit-reset': '-30' }],
  ] as [string, Record<string, string>][])
    it(`${name}: the normal backoff (under a second at first), not a minute`, async () => {
      srv = await limited(headers, 2);
      const r = await runBkci(['build', 'get', '5', '--json'], { env: srv.env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.sleeps).toHaveLength(2);
      expect(r.sleeps[0]).toBeLessThanOrEqual(500);
      expect(r.sleeps[1]).toBeLessThanOrEqual(1000);
      expect(r.stderr).toMatch(/GET \/v2\/organizations\/org\/pipelines\/pipe\/builds\/5: rate limited by the API, which does not say until when/);
      clean(r, { json: true });
    });
});

describe('Retry-After that asks too much', () => {
  it('a day: capped at a minute, said on stderr, then asked again', async () => {
    srv = await limited({ 'retry-after': '86400' });
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.sleeps).toEqual([60_000]);
    expect(r.stderr).toMatch(/which asks to wait 86400s; waiting 60s \(the most bkci waits at once\)/);
    clean(r);
  });

  it('for ever: ten capped waits, then a clear error (exit 1)', async () => {
    srv = await limited({ 'retry-after': '999999999999' }, Infinity);
    const r = await runBkci(['build', 'get', '5'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.sleeps).toEqual(Array(10).fill(60_000));
    expect(r.stderr).toMatch(/^bkci: GET \/v2\/organizations\/org\/pipelines\/pipe\/builds\/5: still rate limited after 10 waits: You have exceeded/m);
    clean(r);
  });
});

describe('a 429 storm on build submit --wait', () => {
  it('the create is resent after each wait (a 429 was not processed), one build is made, the wait bounded by --timeout', async () => {
    let posts = 0;
    let created = 0;
    srv = await serve((req, res, url) => {
      if (req.method === 'POST' && url.pathname === BUILDS) {
        // Three 429s, then the build is made.
        if (++posts <= 3) return json(res, 429, { message: 'slow down' }, { 'ratelimit-reset': '2' });
        created++;
        return json(res, 201, build(7, 'scheduled'));
      }
      // Every read of the build is rate limited, for ever.
      json(res, 429, { message: 'slow down' }, { 'retry-after': '20' });
    });
    const r = await runBkci(['build', 'submit', '--branch', 'main', '--commit', 'abc123', '--wait', '--timeout', '3m', '--json'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(created).toBe(1);
    expect(posts).toBe(4);
    expect(r.stderr).toMatch(/^bkci: timed out after 3m waiting for build #7: it could not be read \(.*rate limited/m);
    // Everything waited (fake clock) fits in the timeout.
    expect(r.sleeps.slice(0, 3)).toEqual([2000, 2000, 2000]);
    expect(r.sleeps.slice(3).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(180_000);
    expect(r.stdout).toBe('');
    clean(r, { json: true });
  });
});

describe('lists whose pages never end', () => {
  it('every page new items and a new next page: stops at 100 pages with a clear error (exit 1), not 1,000 requests', async () => {
    srv = await serve((req, res, url) => {
      const page = Number(url.searchParams.get('page') ?? 1);
      const next = new URL(req.url ?? '/', srv.origin);
      next.searchParams.set('page', String(page + 1));
      json(res, 200, [{ id: `a-${page}`, path: `out/${page}.txt`, download_url: `${srv.origin}/dl/${page}` }], { link: `<${next.href}>; rel="next"` });
    });
    const r = await runBkci(['build', 'artifacts', '5', '--json'], { env: srv.env });
    expect(r.code).toBe(1);
    expect(srv.requests).toHaveLength(100);
    expect(r.stderr).toMatch(/^bkci: GET \/v2\/organizations\/org\/pipelines\/pipe\/builds\/5\/artifacts: gave up after 100 pages \(100 items with ids\)/m);
    expect(r.stdout).toBe('');
    clean(r, { json: true });
  });

  it('build list stops at its --limit, long before the page cap', async () => {
    srv = await serve((req, res, url) => {
      const page = Number(url.searchParams.get('page') ?? 1);
      const next = new URL(req.url ?? '/', srv.origin);
      next.searchParams.set('page', String(page + 1));
      json(
        res,
        200,
        Array.from({ length: 100 }, (_x, i) => build(100_000 - page * 100 - i)),
        { link: `<${next.href}>; rel="next"` },
      );
    });
    const r = await runBkci(['build', 'list', '--limit', '250', '--json'], { env: srv.env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(250);
    expect(srv.requests).toHaveLength(3);
  });
});
