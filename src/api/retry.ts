// What to do after one HTTP attempt that did not succeed: the client's whole retry policy as one
// pure function of the outcome (a status with its headers and body, or a network error), the
// attempt counters, the method and the clock. src/api/client.ts applies the decision; the table
// of cases is test/api/retry.test.ts.
//
//   outcome                          GET/PUT/DELETE                      POST
//   429                              wait RateLimit-Reset / Retry-After   same (a 429 was not processed)
//   5xx                              backoff (Retry-After up to 60 s)     look up the build (ambiguous)
//   network error, nothing sent      backoff                              backoff (safe: never reached the server)
//   network error after sending      backoff                              look up the build (ambiguous)
//   TLS certificate refused          give up (exit 1)                     give up
//   3xx + Location, same origin      follow (up to 5)                     follow only 307/308
//   3xx elsewhere / bad Location     give up, named                       give up, named
//   4xx                              give up: 401/403/404 exit 2, else 1  same
// A wait that would end past the deadline (`build wait --timeout`) gives up instead.
import { BkciError } from '../util/errors.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Headers = Record<string, string | string[] | undefined>;

// An error answer from the API (4xx/5xx after retries). 422 and 5xx exit 1; 401/403/404 exit 2
// (the token, org, pipeline or build given is wrong).
export class ApiError extends BkciError {
  override readonly exitCode: 1 | 2;
  constructor(
    message: string,
    readonly status: number,
    readonly apiMessage: string | undefined,
    hint?: string,
    exitCode?: 1 | 2,
  ) {
    super(message, hint);
    this.exitCode = exitCode ?? (status === 401 || status === 403 || status === 404 ? 2 : 1);
  }
}

// The request may or may not have been processed (connection lost, timeout, 5xx on a POST).
export class AmbiguousRequestError extends BkciError {
  constructor(message: string, cause?: unknown) {
    super(message, 'check whether the request took effect before repeating it', { cause });
  }
}

// Network failure after every retry (or one that retrying cannot fix).
export class NetworkError extends BkciError {}

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;
// The longest one rate-limit wait (Buildkite's window is a minute): a longer one asked is capped
// to this, and said so.
export const MAX_RATE_LIMIT_WAIT_S = 60;
// Same-origin redirects followed for one API request.
export const MAX_REDIRECTS = 5;
// The longest a 5xx's Retry-After is honoured.
const MAX_RETRY_AFTER_5XX_S = 60;

export type Outcome =
  // An answer the caller does not take as it is: 3xx (unless the caller follows them itself), 4xx, 5xx.
  | { kind: 'status'; status: number; headers: Headers; body: string }
  // No answer, or the answer broke off. `error` is what undici or Node threw.
  | { kind: 'network'; error: unknown; reading?: boolean };

export interface Attempts {
  // Failed attempts so far, this one included (redirects and rate-limit waits do not count).
  attempt: number;
  // Rate-limit waits so far (not counting this one).
  rateWaits: number;
  // Redirects followed so far.
  hops: number;
}

export interface DecideContext {
  method: Method;
  url: URL;
  // The API's origin: the only one the token goes to, and the only one redirects may lead to.
  apiOrigin: string;
  maxAttempts: number;
  maxRateLimitWaits: number;
  // Epoch milliseconds from the Io clock.
  now: number;
  // Give up rather than wait past this (epoch ms); undefined: no deadline.
  deadline?: number;
  random: () => number;
  // For the 403/404 messages.
  scope?: string;
  what?: string;
}

export type Decision =
  | { retryAfterMs: number; why: string; rateLimited?: boolean }
  | { redirect: URL }
  | { giveUp: BkciError }
  // A create that may have been processed: the caller looks for it before sending it again.
  | { lookUpBuild: AmbiguousRequestError };

export function decide(outcome: Outcome, n: Attempts, ctx: DecideContext): Decision {
  const where = `${ctx.method} ${ctx.url.pathname}`;
  const idempotent = ctx.method !== 'POST';
  const pastDeadline = (ms: number) => ctx.deadline !== undefined && ctx.now + ms > ctx.deadline;

  if (outcome.kind === 'network') {
    const cert = certificateProblem(outcome.error);
    // The handshake failed, so nothing was sent; retrying would meet the same certificate.
    if (cert)
      return {
        giveUp: new NetworkError(`${where}: the TLS certificate of ${ctx.url.origin} was not accepted: ${cert.reason}`, cert.hint, { cause: outcome.error }),
      };
    const tls = tlsProblem(outcome.error);
    // No TLS session was made, so nothing was sent; the next handshake would fail the same way.
    if (tls)
      return {
        giveUp: new NetworkError(`${where}: the TLS handshake with ${ctx.url.origin} failed: ${tls}`, tlsHint(ctx.url), { cause: outcome.error }),
      };
    const garbled = protocolProblem(outcome.error);
    // An answer that is not HTTP/1.1 comes back the same when asked again: not retried. A POST
    // did reach the server, so the caller still looks for the build it may have created.
    if (garbled) {
      const msg = `${where}: the server at ${ctx.url.origin} did not answer in HTTP/1.1 (${garbled})`;
      if (!idempotent) return { lookUpBuild: new AmbiguousRequestError(`${msg}; the request may or may not have been processed`, outcome.error) };
      return {
        giveUp: new NetworkError(
          msg,
          'check that --api-url / BUILDKITE_API_URL is the Buildkite REST API (https://api.buildkite.com/v2) and that no proxy in between answers in another protocol',
          { cause: outcome.error },
        ),
      };
    }
    const reason = describeNetworkError(outcome.error) + (outcome.reading ? ' while reading the answer' : '');
    const sent = outcome.reading || !neverSent(outcome.error);
    if (!idempotent && sent)
      return { lookUpBuild: new AmbiguousRequestError(`${where}: ${reason}; the request may or may not have been processed`, outcome.error) };
    if (n.attempt >= ctx.maxAttempts)
      return {
        giveUp: new NetworkError(`${where}: ${reason} (gave up after ${n.attempt} attempts)`, `check that ${ctx.url.origin} is reachable`, {
          cause: outcome.error,
        }),
      };
    const ms = backoffDelay(n.attempt, ctx.random);
    if (pastDeadline(ms))
      return { giveUp: new NetworkError(`${where}: ${reason} (gave up: the time allowed has run out)`, `check that ${ctx.url.origin} is reachable`) };
    return { retryAfterMs: ms, why: `${where}: ${reason} (attempt ${n.attempt} of ${ctx.maxAttempts})` };
  }

  const { status, headers, body } = outcome;
  const said = apiMessage(body);
  if (status === 429) {
    if (n.rateWaits >= ctx.maxRateLimitWaits)
      return {
        giveUp: new ApiError(
          `${where}: still rate limited after ${n.rateWaits} waits${said ? `: ${said}` : ''}`,
          429,
          said,
          'wait a minute and run again, or poll less often',
        ),
      };
    const asked = rateLimitWait(headers, body, ctx.now);
    // Nothing readable said when (no header, `Retry-After: soon`, a negative number): the normal
    // backoff, growing with each wait. Asked for longer than the cap (a proxy's `Retry-After:
    // 86400`): the cap, and the message says so.
    const ms = asked === undefined ? backoffDelay(n.rateWaits + 1, ctx.random) : Math.min(asked, MAX_RATE_LIMIT_WAIT_S) * 1000;
    if (pastDeadline(ms)) return { giveUp: new ApiError(`${where}: rate limited for ${formatWait(ms)}, past the time allowed`, 429, said) };
    const why =
      asked === undefined
        ? `${where}: rate limited by the API, which does not say until when${retryAfterText(headers)}; waiting ${formatWait(ms)}`
        : asked > MAX_RATE_LIMIT_WAIT_S
          ? `${where}: rate limited by the API, which asks to wait ${asked}s; waiting ${MAX_RATE_LIMIT_WAIT_S}s (the most bkci waits at once) and asking again`
          : `${where}: rate limited by the API; waiting ${asked}s`;
    return { retryAfterMs: ms, why, rateLimited: true };
  }
  if (status >= 500) {
    const msg = `${where}: the API answered ${status}${said ? `: ${said}` : ''}`;
    if (!idempotent) return { lookUpBuild: new AmbiguousRequestError(msg) };
    if (n.attempt >= ctx.maxAttempts)
      return { giveUp: new ApiError(`${msg} (gave up after ${n.attempt} attempts)`, status, said, 'Buildkite may be having an incident; try again later') };
    // A 503 may say when to come back; honour it (up to a minute) if it is longer than the backoff.
    const after = headerValue(headers, 'retry-after') !== undefined ? Math.min(MAX_RETRY_AFTER_5XX_S, rateLimitWait(headers, '', ctx.now) ?? 0) * 1000 : 0;
    const ms = Math.max(after, backoffDelay(n.attempt, ctx.random));
    if (pastDeadline(ms)) return { giveUp: new ApiError(`${msg} (gave up: the time allowed has run out)`, status, said) };
    return { retryAfterMs: ms, why: `${msg} (attempt ${n.attempt} of ${ctx.maxAttempts})` };
  }
  const location = headerValue(headers, 'location');
  if (status >= 300 && status < 400 && location !== undefined) {
    // The API moved (a trailing slash, a renamed slug): follow it on the same host, with the
    // token; never to another host, and never turn a POST into a GET.
    const target = parseUrl(location, ctx.url);
    if (!target)
      return {
        giveUp: new ApiError(`${where}: the API answered ${status} with a Location header that is not a URL: ${quote(location)}`, status, undefined),
      };
    if (target.origin !== ctx.apiOrigin)
      return {
        giveUp: new ApiError(
          `${where}: the API redirected to ${target.origin}${target.pathname} (${status}); not following it with the token`,
          status,
          undefined,
          /^https?:$/.test(target.protocol) ? `if that is where the API lives, set BUILDKITE_API_URL (or --api-url) to ${target.origin}/v2` : undefined,
        ),
      };
    if (ctx.method !== 'GET' && status !== 307 && status !== 308)
      return {
        giveUp: new ApiError(`${where}: the API answered ${status} (moved to ${target.pathname}); not resending a ${ctx.method} as a GET`, status, undefined),
      };
    if (n.hops >= MAX_REDIRECTS) return { giveUp: new ApiError(`${where}: more than ${MAX_REDIRECTS} redirects`, status, undefined) };
    return { redirect: target };
  }
  return { giveUp: errorFor(status, body, where, ctx) };
}

// Full-jitter exponential backoff: a random delay up to min(cap, base * 2^(attempt-1)), at least 100 ms.
export function backoffDelay(attempt: number, random: () => number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return Math.max(100, Math.round(random() * ceiling));
}

// Seconds to wait on a 429: RateLimit-Reset, else Retry-After (seconds or an HTTP date), else the
// body's `reset`; never less than 1. Undefined when none of them says it in a way that can be
// read (absent, `soon`, negative, not a number): the caller backs off as after any failure.
// `now` is epoch milliseconds.
export function rateLimitWait(headers: Headers, body: string, now: number): number | undefined {
  const resetText = headerValue(headers, 'ratelimit-reset');
  const reset = resetText === undefined || resetText.trim() === '' ? NaN : Number(resetText);
  // Seconds until the reset (Buildkite); a value that large is an epoch time instead.
  if (Number.isFinite(reset) && reset >= 1e9) return Math.max(1, Math.ceil(reset - now / 1000));
  if (Number.isFinite(reset) && reset >= 0) return Math.max(1, Math.ceil(reset));
  const after = headerValue(headers, 'retry-after');
  if (after !== undefined && after.trim() !== '') {
    const n = Number(after);
    if (Number.isFinite(n) && n >= 0) return Math.max(1, Math.ceil(n));
    // An HTTP date names its day and month (V8 would also read "-5" as a year).
    const date = /[a-z]/i.test(after) ? Date.parse(after) : NaN;
    if (!Number.isNaN(date)) return Math.max(1, Math.ceil((date - now) / 1000));
  }
  try {
    const r = (JSON.parse(body) as { reset?: unknown } | null)?.reset;
    if (typeof r === 'number' && Number.isFinite(r) && r > 0) return Math.ceil(r);
  } catch {
    // not JSON
  }
  return undefined;
}

// ` (Retry-After: "soon")` when the server sent one that could not be read.
function retryAfterText(headers: Headers): string {
  const v = headerValue(headers, 'retry-after');
  return v === undefined ? '' : ` (Retry-After: ${quote(v, 40)})`;
}

function formatWait(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10}s` : `${ms}ms`;
}

export function headerValue(headers: Headers, name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

// A URL relative to `base`, or undefined when it is not one.
export function parseUrl(text: string, base: URL): URL | undefined {
  try {
    return new URL(text, base);
  } catch {
    return undefined;
  }
}

// Text from the server made safe for one line of a terminal: line breaks and tabs become spaces,
// other control characters (ESC of an escape sequence, C1 codes, DEL) are shown escaped.
export function printable(s: string): string {
  return s.replace(/[\t\n\r]+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// Server text quoted for a message: clipped, JSON-escaped, C1 controls escaped too.
export function quote(s: string, n = 200): string {
  return printable(JSON.stringify(clip(s, n)));
}

export function clip(s: string, n = 200): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

// The API's `{"message": ..., "errors": [...]}`, as one line.
export function apiMessage(text: string): string | undefined {
  try {
    const j = JSON.parse(text) as { message?: unknown; errors?: unknown } | null;
    if (typeof j?.message !== 'string') return undefined;
    const errors = Array.isArray(j.errors) ? j.errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('; ') : '';
    return clip(printable(errors ? `${j.message} (${errors})` : j.message), 500);
  } catch {
    return undefined;
  }
}

// What an object store (S3, GCS) says in its XML error: `<Code>AccessDenied</Code><Message>Request has expired</Message>`.
export function storageMessage(text: string): string | undefined {
  const tag = (name: string) => new RegExp(`<${name}>([^<]{1,300})</${name}>`).exec(text)?.[1]?.trim();
  const code = tag('Code');
  const message = tag('Message') ?? tag('Details');
  if (!code && !message) return undefined;
  return printable(code && message ? `${message} (${code})` : (message ?? code)!);
}

function errorFor(status: number, text: string, where: string, ctx: DecideContext): ApiError {
  const msg = apiMessage(text) ?? (ctx.url.origin !== ctx.apiOrigin ? storageMessage(text) : undefined);
  const said = msg ? `: ${msg}` : '';
  // The storage host refusing a signed URL is a failed download (1), not a bad token or slug.
  if (ctx.url.origin !== ctx.apiOrigin)
    return new ApiError(
      `the artifact storage at ${ctx.url.origin} answered ${status}${said}`,
      status,
      msg,
      'signed download URLs expire; run the command again',
      1,
    );
  switch (status) {
    case 401:
      return new ApiError(
        `the API rejected the token (401)${said}`,
        status,
        msg,
        'check BUILDKITE_API_TOKEN (or --token-file): the token may be revoked, expired or mistyped',
      );
    case 403:
      return new ApiError(
        `the token may not do ${where} (403)${said}`,
        status,
        msg,
        ctx.scope
          ? `give the token the \`${ctx.scope}\` scope (and access to the organization) at https://buildkite.com/user/api-access-tokens`
          : 'check the token’s scopes and organization access',
      );
    case 404:
      return new ApiError(
        `not found: ${ctx.what ?? ctx.url.pathname} (404)${said}`,
        status,
        msg,
        /\/v2\//.test(ctx.url.pathname)
          ? 'check the organization and pipeline slugs (--org, --pipeline) and the build number'
          : `the API URL has no /v2 in its path: Buildkite's REST API is ${ctx.url.origin === 'https://api.buildkite.com' ? 'https://api.buildkite.com/v2' : 'under …/v2'} (set --api-url / BUILDKITE_API_URL)`,
      );
    case 407:
      // A proxy in front of the API (the host of --api-url) wants its own credentials; bkci sends
      // only the Buildkite token, and never to a proxy. A setting to fix, not a failed request.
      return new ApiError(
        `a proxy at ${ctx.url.origin} asks for its own credentials for ${where} (407 Proxy Authentication Required)${said}`,
        status,
        msg,
        'bkci sends only the Buildkite token: point --api-url / BUILDKITE_API_URL at https://api.buildkite.com/v2 or at a proxy that passes requests on without credentials of its own',
        2,
      );
    default:
      return new ApiError(`the API refused ${where} (${status})${said}`, status, msg);
  }
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
// Failures before a byte of the request left: safe to send again whatever the method.
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
}

export function isNetworkError(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const codes = [e?.code, e?.cause?.code].filter((c): c is string => typeof c === 'string');
  return codes.some((c) => c.startsWith('UND_ERR') || NETWORK_CODES.has(c) || c === 'ERR_BKCI_TIMEOUT');
}

// An error of the connection (network, TLS, an answer that is not HTTP): an outcome for decide(), not a bug.
export function isTransportError(err: unknown): boolean {
  return isNetworkError(err) || certificateProblem(err) !== undefined || tlsProblem(err) !== undefined || protocolProblem(err) !== undefined;
}

// undici's parser refusing the answer (HTTPParserError, codes HPE_*): a server that does not speak
// HTTP/1.1 (a TLS port asked in plain http, another protocol, a broken proxy). Its reason, or undefined.
export function protocolProblem(err: unknown): string | undefined {
  const found = [err, (err as { cause?: unknown } | undefined)?.cause].find((e) => {
    const x = e as { code?: unknown; name?: unknown } | undefined;
    return (typeof x?.code === 'string' && x.code.startsWith('HPE_')) || x?.name === 'HTTPParserError';
  }) as { message?: string; code?: string } | undefined;
  if (!found) return undefined;
  const why = /\(([^()]*)\)\s*$/.exec(found.message ?? '')?.[1] ?? found.message ?? found.code ?? 'unreadable answer';
  return printable(why);
}

// OpenSSL failing the handshake for a reason other than the certificate (ERR_SSL_*, EPROTO): most
// often an https URL for a server that speaks plain http. Its reason, or undefined.
export function tlsProblem(err: unknown): string | undefined {
  if (certificateProblem(err)) return undefined;
  const found = [err, (err as { cause?: unknown } | undefined)?.cause].find((e) => {
    const c = (e as { code?: unknown } | undefined)?.code;
    return typeof c === 'string' && (c.startsWith('ERR_SSL_') || c === 'EPROTO');
  }) as { code: string; reason?: string; message?: string } | undefined;
  if (!found) return undefined;
  const reason = typeof found.reason === 'string' ? found.reason : (/:([^:]+):[^:]*:\d+:?\s*$/.exec(found.message ?? '')?.[1] ?? found.code);
  return `${printable(reason)} (${found.code})`;
}

function tlsHint(url: URL): string {
  return url.protocol === 'https:'
    ? `if ${url.host} serves plain http, use an http:// URL in --api-url / BUILDKITE_API_URL; if a proxy intercepts TLS here, point NODE_EXTRA_CA_CERTS at its CA`
    : 'check --api-url / BUILDKITE_API_URL';
}

function neverSent(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && NEVER_SENT.has(code);
}

// OpenSSL's verification results as Node names them, and Node's host name check.
const CERT_CODES =
  /^(?:UNABLE_TO_|CERT_|CRL_|ERROR_IN_CERT|ERROR_IN_CRL|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|INVALID_CA$|PATH_LENGTH_EXCEEDED$|INVALID_PURPOSE$|HOSTNAME_MISMATCH$|ERR_TLS_CERT_ALTNAME_INVALID$)/;

export function certificateProblem(err: unknown): { reason: string; hint: string } | undefined {
  const e = err as { code?: unknown; message?: string; cause?: { code?: unknown; message?: string } } | undefined;
  const found = [e, e?.cause].find((x) => typeof x?.code === 'string' && CERT_CODES.test(x.code));
  if (!found) return undefined;
  const code = found.code as string;
  const reason = `${found.message ?? code} (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') return { reason, hint: 'check the host name in --api-url / BUILDKITE_API_URL' };
  if (/EXPIRED|NOT_YET_VALID/.test(code)) return { reason, hint: "check this machine's clock; if it is right, the server's certificate is out of date" };
  return {
    reason,
    hint: 'if a proxy or a private CA signs the certificates here, point NODE_EXTRA_CA_CERTS at its CA certificate (a PEM file) and run again',
  };
}

export function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
  if (e?.code === 'ERR_BKCI_TIMEOUT') return e.message ?? 'the request timed out';
  if (e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT' || e?.code === 'UND_ERR_CONNECT_TIMEOUT') return 'the request timed out';
  if (e?.code === 'UND_ERR_SOCKET') return 'the connection was closed by the server';
  const code = codeOf(err);
  const message = e?.cause?.message && e.message === 'fetch failed' ? e.cause.message : (e?.message ?? String(err));
  return `${message}${code && !message.includes(code) ? ` (${code})` : ''}`;
}
