// The client's and the wait logic's pure parts: Link parsing, rate-limit waits, backoff, durations,
// and what a build state means for waiting.
import { describe, expect, it } from 'vitest';
import { judgeBuild } from '../../src/api/builds.js';
import { backoffDelay, parseLinkHeader, rateLimitWait } from '../../src/api/client.js';
import type { Build } from '../../src/api/types.js';
import { nextInterval } from '../../src/api/wait.js';
import { formatDuration, parseDuration } from '../../src/util/duration.js';

describe('parseLinkHeader', () => {
  it('finds next wherever it sits, with quoted or bare rel, commas inside URLs, several rels', () => {
    const h =
      '<https://api.buildkite.com/v2/builds?page=5&per_page=100>; rel="last", <https://api.buildkite.com/v2/builds?page=2&state[]=a,b>; rel="next", <https://x/1>; rel=first';
    const m = parseLinkHeader(h);
    expect(m.get('next')).toBe('https://api.buildkite.com/v2/builds?page=2&state[]=a,b');
    expect(m.get('last')).toBe('https://api.buildkite.com/v2/builds?page=5&per_page=100');
    expect(m.get('first')).toBe('https://x/1');
    expect(parseLinkHeader('<https://a/2>; title="x, y"; rel="prev next"').get('next')).toBe('https://a/2');
    expect(parseLinkHeader('<https://a/1>; rel="prev"').has('next')).toBe(false);
    expect(parseLinkHeader('').size).toBe(0);
  });
});

describe('rateLimitWait', () => {
  it('prefers RateLimit-Reset, then Retry-After (seconds or date), then the body, then 60', () => {
    expect(rateLimitWait({ 'ratelimit-reset': '42', 'retry-after': '5' }, '', 0)).toBe(42);
    expect(rateLimitWait({ 'retry-after': '5' }, '', 0)).toBe(5);
    expect(rateLimitWait({ 'retry-after': new Date(10_000 + 8_000).toUTCString() }, '', 10_000)).toBe(8);
    expect(rateLimitWait({}, '{"message":"x","reset":17}', 0)).toBe(17);
    expect(rateLimitWait({}, 'oops', 0)).toBeUndefined();
    expect(rateLimitWait({ 'retry-after': '-5' }, '', 0)).toBeUndefined();
    expect(rateLimitWait({ 'ratelimit-reset': '0.2' }, '', 0)).toBe(1);
    expect(rateLimitWait({ 'ratelimit-reset': '0' }, '', 0)).toBe(1);
    expect(rateLimitWait({ 'ratelimit-reset': String(2_000_000_030) }, '', 2_000_000_000_000)).toBe(30);
  });
});

describe('backoff', () => {
  it('is capped, jittered, exponential', () => {
    expect(backoffDelay(1, () => 1)).toBe(500);
    expect(backoffDelay(3, () => 1)).toBe(2000);
    expect(backoffDelay(20, () => 1)).toBe(30_000);
    expect(backoffDelay(20, () => 0)).toBe(100);
    expect(nextInterval(2000, 30_000)).toBe(3000);
    expect(nextInterval(25_000, 30_000)).toBe(30_000);
  });
});

describe('durations', () => {
  it('parses and formats', () => {
    expect(parseDuration('90', '--timeout')).toBe(90_000);
    expect(parseDuration('1h30m', '--timeout')).toBe(5_400_000);
    expect(parseDuration('10m', '--timeout')).toBe(600_000);
    expect(parseDuration('500ms', '--timeout')).toBe(500);
    expect(() => parseDuration('10 minutes', '--timeout')).toThrow(/--timeout "10 minutes": not a duration/);
    expect(() => parseDuration('', '--timeout')).toThrow();
    expect(formatDuration(30_000)).toBe('30s');
    expect(formatDuration(600_000)).toBe('10m');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(3_605_000)).toBe('1h5s');
    expect(formatDuration(0)).toBe('0s');
  });
});

describe('judgeBuild', () => {
  const b = (state: string, extra: Partial<Build> = {}): Build => ({ id: 'x', number: 1, state, jobs: [], ...extra }) as Build;
  it('maps states to done/ok', () => {
    expect(judgeBuild(b('passed'), false)).toMatchObject({ done: true, ok: true });
    for (const s of ['failed', 'canceled', 'not_run', 'skipped']) expect(judgeBuild(b(s), false)).toMatchObject({ done: true, ok: false });
    for (const s of ['scheduled', 'running', 'creating', 'canceling', 'failing']) expect(judgeBuild(b(s), false).done).toBe(false);
    expect(judgeBuild(b('failing'), true)).toMatchObject({ done: true, ok: false });
    // A state bkci does not know: waited on while unfinished, a failure once finished_at is set.
    expect(judgeBuild(b('brand_new_state'), false).done).toBe(false);
    expect(judgeBuild(b('brand_new_state', { finished_at: '2026-11-23T10:00:00Z' }), false)).toEqual({
      done: true,
      ok: false,
      reason: 'finished in state brand_new_state',
    });
    expect(judgeBuild(b('running', { finished_at: '2026-11-23T10:00:00Z' }), false).done).toBe(false);
  });
  it('blocked: blocked_state decides, else the jobs', () => {
    expect(judgeBuild(b('blocked', { blocked_state: 'passed' }), false)).toMatchObject({ done: true, ok: true });
    expect(judgeBuild(b('blocked', { blocked_state: 'failed' }), false)).toMatchObject({ done: true, ok: false });
    expect(judgeBuild(b('blocked', { blocked_state: 'running' }), false).done).toBe(false);
    const job = (state: string) => ({ id: state, type: 'script', state });
    expect(judgeBuild(b('blocked', { jobs: [job('passed'), { id: 'm', type: 'manual', state: 'blocked' }] as Build['jobs'] }), false)).toMatchObject({
      done: true,
      ok: true,
    });
    expect(judgeBuild(b('blocked', { jobs: [job('failed')] as Build['jobs'] }), false)).toMatchObject({ done: true, ok: false });
    expect(judgeBuild(b('blocked', { jobs: [job('running')] as Build['jobs'] }), false).done).toBe(false);
  });
});

describe('shellArg', () => {
  it("plain words bare, others quoted, control and bidi characters escaped as $'...'", async () => {
    const { shellArg } = await import('../../src/api/builds.js');
    expect(shellArg('feature/x-1.2')).toBe('feature/x-1.2');
    expect(shellArg('alice:fix')).toBe('alice:fix');
    expect(shellArg("it's ü")).toBe("'it'\\''s ü'");
    expect(shellArg('a\u001b[2Jb')).toBe("$'a\\x1b[2Jb'");
    expect(shellArg("rtl\u202e'q")).toBe("$'rtl\\u202e\\'q'");
  });
});
