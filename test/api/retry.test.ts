// The client's retry policy as a table: one outcome of one attempt in, one decision out.
import { describe, expect, it } from 'vitest';
import {
  AmbiguousRequestError,
  ApiError,
  decide,
  NetworkError,
  type Attempts,
  type DecideContext,
  type Decision,
  type Method,
  type Outcome,
} from '../../src/api/retry.js';

const API = 'https://api.buildkite.com';
const NOW = Date.parse('2026-11-23T12:00:00Z');

function ctx(method: Method, extra: Partial<DecideContext> = {}): DecideContext {
  return {
    method,
    url: new URL(`${API}/v2/organizations/o/pipelines/p/builds/1`),
    apiOrigin: API,
    maxAttempts: 5,
    maxRateLimitWaits: 10,
    now: NOW,
    random: () => 1,
    scope: 'read_builds',
    what: 'build 1 of o/p',
    ...extra,
  };
}
const first: Attempts = { attempt: 1, rateWaits: 0, hops: 0 };
const status = (s: number, headers: Record<string, string> = {}, body = ''): Outcome => ({ kind: 'status', status: s, headers, body });
const net = (code: string, extra: { reading?: boolean; message?: string } = {}): Outcome => ({
  kind: 'network',
  error: Object.assign(new Error(extra.message ?? `failed: ${code}`), { code }),
  reading: extra.reading,
});

// A decision reduced to what the table compares.
function summary(d: Decision): string {
  if ('retryAfterMs' in d) return `retry ${d.retryAfterMs}${d.rateLimited ? ' rate' : ''}`;
  if ('redirect' in d) return `redirect ${d.redirect.href}`;
  if ('lookUpBuild' in d) return 'look up';
  const e = d.giveUp;
  const kind = e instanceof ApiError ? `api ${e.status}` : e instanceof NetworkError ? 'network' : e.constructor.name;
  return `give up ${kind} exit ${e.exitCode}`;
}

describe('decide: one row per outcome, method and counters', () => {
  const rows: [string, Outcome, Method, Partial<Attempts>, Partial<DecideContext>, string][] = [
    // 429: any method, the wait the server asks for (RateLimit-Reset first), not counted as an attempt.
    ['429 RateLimit-Reset', status(429, { 'ratelimit-reset': '42', 'retry-after': '5' }), 'GET', {}, {}, 'retry 42000 rate'],
    ['429 on a POST (not processed)', status(429, { 'ratelimit-reset': '3' }), 'POST', {}, {}, 'retry 3000 rate'],
    ['429 Retry-After seconds', status(429, { 'retry-after': '7' }), 'PUT', {}, {}, 'retry 7000 rate'],
    ['429 Retry-After HTTP date', status(429, { 'retry-after': new Date(NOW + 9_000).toUTCString() }), 'DELETE', {}, {}, 'retry 9000 rate'],
    ['429 RateLimit-Reset as epoch seconds', status(429, { 'ratelimit-reset': String(NOW / 1000 + 12) }), 'GET', {}, {}, 'retry 12000 rate'],
    ['429 body reset', status(429, {}, '{"message":"slow down","reset":4}'), 'GET', {}, {}, 'retry 4000 rate'],
    // Nothing readable said: the normal backoff, growing with the waits so far (random 1: its ceiling).
    ['429 Retry-After unreadable: backoff', status(429, { 'retry-after': 'soon' }), 'GET', {}, {}, 'retry 500 rate'],
    ['429 nothing said at all: backoff', status(429), 'GET', {}, {}, 'retry 500 rate'],
    ['429 negative Retry-After: backoff', status(429, { 'retry-after': '-5' }), 'GET', {}, {}, 'retry 500 rate'],
    ['429 negative RateLimit-Reset, nothing else: backoff', status(429, { 'ratelimit-reset': '-3' }), 'GET', {}, {}, 'retry 500 rate'],
    ['429 Retry-After not a number after 3 waits: backoff grows', status(429, { 'retry-after': 'NaN' }), 'GET', { rateWaits: 3 }, {}, 'retry 4000 rate'],
    // Asked for longer than a minute: a minute, then asked again.
    ['429 asking for hours: capped', status(429, { 'ratelimit-reset': '7200' }), 'GET', {}, {}, 'retry 60000 rate'],
    ['429 Retry-After a day: capped', status(429, { 'retry-after': '86400' }), 'POST', {}, {}, 'retry 60000 rate'],
    ['503 with an unreadable Retry-After: backoff', status(503, { 'retry-after': 'later' }), 'GET', {}, {}, 'retry 500'],
    ['429 after 10 waits', status(429, { 'ratelimit-reset': '1' }), 'GET', { rateWaits: 10 }, {}, 'give up api 429 exit 1'],
    ['429 past the deadline', status(429, { 'ratelimit-reset': '30' }), 'GET', {}, { deadline: NOW + 10_000 }, 'give up api 429 exit 1'],
    // 5xx: backoff for idempotent methods, an ambiguous create for POST.
    ['500 GET first attempt', status(500), 'GET', {}, {}, 'retry 500'],
    ['502 PUT third attempt', status(502), 'PUT', { attempt: 3 }, {}, 'retry 2000'],
    ['503 DELETE with Retry-After longer than the backoff', status(503, { 'retry-after': '20' }), 'DELETE', {}, {}, 'retry 20000'],
    ['503 Retry-After capped at a minute', status(503, { 'retry-after': '3600' }), 'GET', {}, {}, 'retry 60000'],
    ['504 backoff capped at 30 s', status(504), 'GET', { attempt: 4 }, { maxAttempts: 20, random: () => 1 }, 'retry 4000'],
    ['500 on the last attempt', status(500), 'GET', { attempt: 5 }, {}, 'give up api 500 exit 1'],
    ['500 past the deadline', status(500), 'GET', {}, { deadline: NOW + 100 }, 'give up api 500 exit 1'],
    ['500 on a POST', status(500), 'POST', {}, {}, 'look up'],
    ['503 on a POST even on the last attempt', status(503), 'POST', { attempt: 5 }, {}, 'look up'],
    // Network errors: nothing sent is safe to resend for every method; after sending, POST is ambiguous.
    ['connection refused GET', net('ECONNREFUSED'), 'GET', {}, {}, 'retry 500'],
    ['connection refused POST (never sent)', net('ECONNREFUSED'), 'POST', {}, {}, 'retry 500'],
    ['DNS failure POST (never sent)', net('ENOTFOUND'), 'POST', {}, {}, 'retry 500'],
    ['connect timeout POST (never sent)', net('UND_ERR_CONNECT_TIMEOUT'), 'POST', {}, {}, 'retry 500'],
    ['reset GET', net('ECONNRESET'), 'GET', { attempt: 2 }, {}, 'retry 1000'],
    ['reset POST', net('ECONNRESET'), 'POST', {}, {}, 'look up'],
    ['socket closed POST', net('UND_ERR_SOCKET'), 'POST', {}, {}, 'look up'],
    ['headers timeout POST', net('UND_ERR_HEADERS_TIMEOUT'), 'POST', {}, {}, 'look up'],
    ['whole-exchange timeout GET', net('ERR_BKCI_TIMEOUT'), 'GET', {}, {}, 'retry 500'],
    ['refused while reading a POST answer', net('ECONNREFUSED', { reading: true }), 'POST', {}, {}, 'look up'],
    ['body broke off GET', net('UND_ERR_SOCKET', { reading: true }), 'GET', {}, {}, 'retry 500'],
    ['network error on the last attempt', net('ECONNRESET'), 'GET', { attempt: 5 }, {}, 'give up network exit 1'],
    ['never-sent POST on the last attempt', net('ECONNREFUSED'), 'POST', { attempt: 5 }, {}, 'give up network exit 1'],
    ['network error past the deadline', net('ECONNREFUSED'), 'GET', {}, { deadline: NOW + 50 }, 'give up network exit 1'],
    ['untrusted certificate', net('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'POST', {}, {}, 'give up network exit 1'],
    ['expired certificate', net('CERT_HAS_EXPIRED'), 'GET', {}, {}, 'give up network exit 1'],
    ['host name mismatch', net('ERR_TLS_CERT_ALTNAME_INVALID'), 'GET', {}, {}, 'give up network exit 1'],
    // A TLS handshake that fails for another reason (an https URL for a plain-http port): nothing sent.
    ['TLS wrong version GET', net('ERR_SSL_WRONG_VERSION_NUMBER'), 'GET', {}, {}, 'give up network exit 1'],
    ['TLS wrong version POST (never sent)', net('ERR_SSL_WRONG_VERSION_NUMBER'), 'POST', {}, {}, 'give up network exit 1'],
    ['EPROTO', net('EPROTO'), 'GET', {}, {}, 'give up network exit 1'],
    // An answer that is not HTTP/1.1: asked again it comes back the same; a POST did reach the server.
    ['not HTTP GET', net('HPE_INVALID_CONSTANT'), 'GET', {}, {}, 'give up network exit 1'],
    ['not HTTP PUT', net('HPE_INVALID_CHUNK_SIZE', { reading: true }), 'PUT', {}, {}, 'give up network exit 1'],
    ['not HTTP POST', net('HPE_INVALID_STATUS'), 'POST', {}, {}, 'look up'],
    // Redirects: same origin only, with the method kept only by 307/308, at most 5.
    ['301 same origin GET', status(301, { location: '/v2/elsewhere' }), 'GET', {}, {}, `redirect ${API}/v2/elsewhere`],
    ['302 relative Location', status(302, { location: 'builds/2' }), 'GET', {}, {}, `redirect ${API}/v2/organizations/o/pipelines/p/builds/builds/2`],
    ['307 same origin PUT', status(307, { location: '/v2/x' }), 'PUT', {}, {}, `redirect ${API}/v2/x`],
    ['308 same origin POST', status(308, { location: '/v2/x' }), 'POST', {}, {}, `redirect ${API}/v2/x`],
    ['301 POST would become a GET', status(301, { location: '/v2/x' }), 'POST', {}, {}, 'give up api 301 exit 1'],
    ['302 to another host', status(302, { location: 'https://evil.example/v2/x' }), 'GET', {}, {}, 'give up api 302 exit 1'],
    ['302 to a file: URL', status(302, { location: 'file:///etc/passwd' }), 'GET', {}, {}, 'give up api 302 exit 1'],
    ['302 Location not a URL', status(302, { location: 'http://[::1' }), 'GET', {}, {}, 'give up api 302 exit 1'],
    ['302 after 5 hops', status(302, { location: '/v2/x' }), 'GET', { hops: 5 }, {}, 'give up api 302 exit 1'],
    ['304 without Location', status(304), 'GET', {}, {}, 'give up api 304 exit 1'],
    // 4xx: the answer is final.
    ['400', status(400, {}, '{"message":"bad"}'), 'GET', {}, {}, 'give up api 400 exit 1'],
    ['401', status(401), 'GET', {}, {}, 'give up api 401 exit 2'],
    ['403', status(403), 'POST', {}, {}, 'give up api 403 exit 2'],
    ['404', status(404), 'PUT', {}, {}, 'give up api 404 exit 2'],
    ['407 (a proxy wants credentials)', status(407), 'GET', {}, {}, 'give up api 407 exit 2'],
    ['409', status(409), 'PUT', {}, {}, 'give up api 409 exit 1'],
    ['422', status(422, {}, '{"message":"Validation failed","errors":["branch"]}'), 'POST', {}, {}, 'give up api 422 exit 1'],
    ['418', status(418), 'DELETE', {}, {}, 'give up api 418 exit 1'],
    ['storage host 403 (expired signature)', status(403), 'GET', {}, { url: new URL('https://storage.example/blob/1?sig=x') }, 'give up api 403 exit 1'],
  ];
  for (const [name, outcome, method, n, extra, want] of rows) {
    it(`${name}: ${want}`, () => {
      expect(summary(decide(outcome, { ...first, ...n }, ctx(method, extra)))).toBe(want);
    });
  }
});

describe('decide: messages', () => {
  it('name the request, the reason and what to do', () => {
    const d = decide(net('ECONNREFUSED', { message: 'connect ECONNREFUSED 127.0.0.1:9' }), first, ctx('GET'));
    expect('retryAfterMs' in d && d.why).toBe('GET /v2/organizations/o/pipelines/p/builds/1: connect ECONNREFUSED 127.0.0.1:9 (attempt 1 of 5)');
    const g = decide(status(403), first, ctx('GET'));
    expect('giveUp' in g && g.giveUp.hint).toMatch(/`read_builds` scope/);
    const nf = decide(status(404, {}, '{"message":"No build found"}'), first, ctx('GET'));
    expect('giveUp' in nf && nf.giveUp.message).toBe('not found: build 1 of o/p (404): No build found');
    const bad = decide(status(302, { location: 'http://[::1' }), first, ctx('GET'));
    expect('giveUp' in bad && bad.giveUp.message).toMatch(/Location header that is not a URL: "http:\/\/\[::1"/);
    const other = decide(status(302, { location: 'https://evil.example/v2/x' }), first, ctx('GET'));
    expect('giveUp' in other && other.giveUp.hint).toMatch(/BUILDKITE_API_URL/);
    const post = decide(status(502), first, ctx('POST'));
    expect('lookUpBuild' in post && post.lookUpBuild).toBeInstanceOf(AmbiguousRequestError);
    const proxy = decide(status(407), first, ctx('GET'));
    expect('giveUp' in proxy && proxy.giveUp.message).toMatch(
      /^a proxy at \S+ asks for its own credentials for GET \S+ \(407 Proxy Authentication Required\)$/,
    );
    expect('giveUp' in proxy && proxy.giveUp.hint).toMatch(/--api-url/);
    const cert = decide(net('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), first, ctx('GET'));
    expect('giveUp' in cert && cert.giveUp.hint).toMatch(/NODE_EXTRA_CA_CERTS/);
  });

  it('an answer that is not HTTP, and a TLS failure, say where and what to check', () => {
    const hpe = decide(
      {
        kind: 'network',
        error: Object.assign(new Error('Response does not match the HTTP/1.1 protocol (Invalid status code)'), {
          code: 'HPE_INVALID_STATUS',
          name: 'HTTPParserError',
        }),
      },
      first,
      ctx('GET'),
    );
    expect('giveUp' in hpe && hpe.giveUp.message).toBe(
      `GET /v2/organizations/o/pipelines/p/builds/1: the server at ${API} did not answer in HTTP/1.1 (Invalid status code)`,
    );
    expect('giveUp' in hpe && hpe.giveUp.hint).toMatch(/--api-url/);
    const tls = decide(
      {
        kind: 'network',
        error: Object.assign(new Error('ssl3_get_record:wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER', reason: 'wrong version number' }),
      },
      first,
      ctx('GET'),
    );
    expect('giveUp' in tls && tls.giveUp.message).toBe(
      `GET /v2/organizations/o/pipelines/p/builds/1: the TLS handshake with ${API} failed: wrong version number (ERR_SSL_WRONG_VERSION_NUMBER)`,
    );
    expect('giveUp' in tls && tls.giveUp.hint).toMatch(/if api\.buildkite\.com serves plain http, use an http:\/\/ URL/);
  });

  it("an object store's XML error is named for a failed download", () => {
    const xml = '<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><RequestId>X</RequestId></Error>';
    const d = decide(
      status(403, { 'content-type': 'application/xml' }, xml),
      first,
      ctx('GET', { url: new URL('https://bucket.s3.amazonaws.com/a?X-Amz-Signature=s') }),
    );
    expect('giveUp' in d && d.giveUp.message).toBe('the artifact storage at https://bucket.s3.amazonaws.com answered 403: Request has expired (AccessDenied)');
    expect('giveUp' in d && d.giveUp.exitCode).toBe(1);
  });

  it('control characters in what the API says are escaped', () => {
    const d = decide(status(400, {}, JSON.stringify({ message: 'a\u001b[31mb\nc\u009bd' })), first, ctx('GET'));
    expect('giveUp' in d && d.giveUp.message).toBe('the API refused GET /v2/organizations/o/pipelines/p/builds/1 (400): a\\u001b[31mb c\\u009bd');
  });

  it('a huge API message is clipped', () => {
    const d = decide(status(400, {}, JSON.stringify({ message: 'x'.repeat(100_000) })), first, ctx('GET'));
    expect('giveUp' in d && d.giveUp.message.length).toBeLessThan(1000);
  });

  it('backoff is jittered: the random draw scales the delay, at least 100 ms', () => {
    const at = (r: number, attempt: number) => decide(status(500), { ...first, attempt }, ctx('GET', { random: () => r, maxAttempts: 30 }));
    expect(summary(at(0.5, 1))).toBe('retry 250');
    expect(summary(at(0, 1))).toBe('retry 100');
    expect(summary(at(1, 20))).toBe('retry 30000');
  });
});
