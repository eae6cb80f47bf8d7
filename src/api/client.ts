// The one HTTP client for Buildkite's REST API (undici). It adds the auth header and user agent,
// turns error answers into typed errors, follows `Link: rel="next"` pages, waits out rate limits
// (any method: a 429 was not processed) and retries idempotent requests on network errors and 5xx
// with capped, jittered exponential backoff. A non-idempotent request that fails ambiguously
// (connection dropped, timeout, 5xx) is never resent here: it raises AmbiguousRequestError and the
// caller decides (see createBuild). The token never leaves this module except in the header.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { BkciError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { redact } from '../util/redact.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

export interface ClientOptions {
  apiUrl: string;
  token: string;
  userAgent: string;
  io: Io;
  // Per-request headers/body timeout.
  timeoutMs?: number;
  // Attempts for network errors and 5xx on idempotent requests.
  maxAttempts?: number;
  // Rate-limit waits before giving up.
  maxRateLimitWaits?: number;
  random?: () => number;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  accept?: string;
  // The token scope the request needs, named in a 403 message.
  scope?: string;
  // What the request addresses ("build 12 of acme/gpu-tests"), named in a 404 message.
  what?: string;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  url: URL;
}

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

// Network failure of an idempotent request after every retry.
export class NetworkError extends BkciError {}

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
// A rate-limit wait longer than this is a server that will not serve us: give up and say so.
const MAX_RATE_LIMIT_WAIT_S = 900;
// Pages of one list before deciding the server's Link headers never end.
const MAX_PAGES = 1000;
// Same-origin redirects followed for one API request.
const MAX_REDIRECTS = 5;

export class ApiClient {
  readonly base: URL;
  private readonly token: string;
  private readonly io: Io;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly maxRateLimitWaits: number;
  private readonly random: () => number;
  private readonly userAgent: string;
  private dispatcher: Dispatcher | undefined;
  private undici: typeof import('undici') | undefined;

  constructor(opts: ClientOptions) {
    this.base = new URL(opts.apiUrl.endsWith('/') ? opts.apiUrl : opts.apiUrl + '/');
    this.token = opts.token;
    this.io = opts.io;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.maxRateLimitWaits = opts.maxRateLimitWaits ?? 10;
    this.random = opts.random ?? Math.random;
    this.userAgent = opts.userAgent;
  }

  // Resolves an API path (`organizations/x/builds`) or absolute URL against the base URL.
  url(pathOrUrl: string, query?: Query): URL {
    const u = /^https?:\/\//.test(pathOrUrl) ? new URL(pathOrUrl) : new URL(pathOrUrl.replace(/^\//, ''), this.base);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v as readonly string[]) u.searchParams.append(k, item);
      else u.searchParams.set(k, String(v));
    }
    return u;
  }

  async json<T>(method: Method, path: string, opts: RequestOptions = {}): Promise<T> {
    const { data } = await this.jsonWithResponse<T>(method, this.url(path, opts.query), opts);
    return data;
  }

  async text(path: string, opts: RequestOptions = {}): Promise<string> {
    return this.exchange('GET', this.url(path, opts.query), { ...opts, accept: opts.accept ?? 'text/plain' }, async (body, res) => bodyText(body, res));
  }

  // Every item of a paginated list, following `Link: rel="next"` until it is absent.
  async *paginate<T>(path: string, opts: RequestOptions = {}): AsyncGenerator<T> {
    let next: URL | undefined = this.url(path, { per_page: 100, ...opts.query });
    const seen = new Set<string>();
    const ids = new Set<string>();
    while (next) {
      if (seen.size >= MAX_PAGES) throw new ApiError(`gave up after ${MAX_PAGES} pages of ${next.pathname}: the API's Link headers do not end`, 0, undefined);
      if (seen.has(next.href)) throw new ApiError(`the API's Link header points back to a page already read (${next.pathname}${next.search})`, 0, undefined);
      seen.add(next.href);
      const { data, response }: { data: unknown; response: Response } = await this.jsonWithResponse<unknown>('GET', next, opts);
      if (!Array.isArray(data)) throw new ApiError(`expected a list from ${next.pathname}, got ${typeof data}`, response.status, undefined);
      for (const item of data) {
        // A list that changes while it is read (a new build pushes the others down a page) shows
        // an item twice: once is enough.
        const id = (item as { id?: unknown } | null)?.id;
        if (typeof id === 'string') {
          if (ids.has(id)) continue;
          ids.add(id);
        }
        yield item as T;
      }
      const link = headerValue(response.headers, 'link');
      const rel = link ? parseLinkHeader(link).get('next') : undefined;
      next = rel ? new URL(rel, response.url) : undefined;
      // The token goes with every page: never to a host other than the API's.
      if (next && next.origin !== this.base.origin)
        throw new ApiError(`the API's Link header points to another host (${next.origin}); not following it with the token`, response.status, undefined);
    }
  }

  private async jsonWithResponse<T>(method: Method, url: URL, opts: RequestOptions): Promise<{ data: T; response: Response }> {
    let response: Response | undefined;
    const data = await this.exchange(method, url, { ...opts, accept: opts.accept ?? 'application/json' }, async (body, res) => {
      response = res;
      const text = await bodyText(body, res);
      if (text.trim() === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ApiError(`the API answered ${method} ${url.pathname} with a body that is not JSON: ${text.slice(0, 120)}`, res.status, undefined);
      }
    });
    return { data, response: response! };
  }

  // Downloads `url` (an artifact's download URL): follows redirects itself, sending the
  // Authorization header only to the API's own origin, and hands the final body to `sink`.
  async download<T>(url: string, sink: (body: Readable & { text(): Promise<string> }, res: Response) => Promise<T>, opts: RequestOptions = {}): Promise<T> {
    let target = this.url(url);
    for (let hop = 0; hop < 6; hop++) {
      const auth = target.origin === this.base.origin;
      const step = await this.exchange(
        'GET',
        target,
        { ...opts, accept: '*/*', noAuth: !auth, redirects: true },
        async (body, res): Promise<{ redirect: URL } | { value: T }> => {
          const location = headerValue(res.headers, 'location');
          if (res.status >= 300 && res.status < 400 && location) {
            await body.dump();
            return { redirect: new URL(location, target) };
          }
          // Buildkite may answer the download endpoint with `{"url": "<signed url>"}`.
          const type = headerValue(res.headers, 'content-type') ?? '';
          if (auth && type.includes('application/json')) {
            const parsed = JSON.parse(await body.text()) as { url?: unknown };
            if (typeof parsed.url === 'string') return { redirect: new URL(parsed.url, target) };
            throw new ApiError(`the download endpoint answered JSON without a url`, res.status, undefined);
          }
          return { value: await sink(body, res) };
        },
      );
      if ('value' in step) return step.value;
      this.io.log.debug({ to: step.redirect.origin, authorization: step.redirect.origin === this.base.origin }, 'following the download redirect');
      target = step.redirect;
    }
    throw new ApiError(`too many redirects downloading ${this.url(url).pathname}`, 0, undefined);
  }

  close(): Promise<void> {
    const d = this.dispatcher;
    this.dispatcher = undefined;
    return d ? d.close() : Promise.resolve();
  }

  private async load(): Promise<{ undici: typeof import('undici'); dispatcher: Dispatcher }> {
    this.undici ??= await import('undici');
    this.dispatcher ??= new this.undici.Agent({ keepAliveTimeout: 4_000, connect: { timeout: this.timeoutMs } });
    return { undici: this.undici, dispatcher: this.dispatcher };
  }

  // One logical request: retries, rate-limit waits, typed errors. `consume` reads the body of a
  // successful answer inside the retry loop, so a connection lost mid-body is retried as well.
  private async exchange<T>(
    method: Method,
    requested: URL,
    opts: RequestOptions & { noAuth?: boolean; redirects?: boolean },
    consume: (body: Dispatcher.ResponseData['body'], res: Response) => Promise<T>,
  ): Promise<T> {
    let url = requested;
    let hops = 0;
    const { undici, dispatcher } = await this.load();
    const idempotent = method !== 'POST';
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: opts.accept ?? 'application/json' };
    if (!opts.noAuth) headers.authorization = `Bearer ${this.token}`;
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    let where = `${method} ${url.pathname}`;
    let attempt = 0;
    let rateWaits = 0;
    for (;;) {
      attempt++;
      let res: Dispatcher.ResponseData;
      const started = Date.now();
      try {
        res = await undici.request(url, { method, headers, body: payload, dispatcher, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
        this.io.log.debug(
          {
            method,
            url: `${url.origin}${url.pathname}${url.search}`,
            status: res.statusCode,
            ms: Date.now() - started,
            authorization: opts.noAuth ? 'none' : 'Bearer [REDACTED]',
          },
          'api request',
        );
      } catch (err) {
        // The handshake failed, so nothing was sent; retrying would meet the same certificate.
        const cert = certificateProblem(err);
        if (cert) throw new NetworkError(`${where}: the TLS certificate of ${url.origin} was not accepted: ${cert.reason}`, cert.hint, { cause: err });
        if (!isNetworkError(err)) throw err;
        const reason = describeNetworkError(err);
        if (!idempotent) throw new AmbiguousRequestError(`${where}: ${reason}; the request may or may not have been processed`, err);
        if (attempt >= this.maxAttempts)
          throw new NetworkError(`${where}: ${reason} (gave up after ${attempt} attempts)`, `check that ${url.origin} is reachable`);
        await this.backoff(attempt, `${where}: ${reason}`);
        continue;
      }
      const response: Response = { status: res.statusCode, headers: res.headers, url };
      if (res.statusCode === 429) {
        const text = await res.body.text().catch(() => '');
        const waitS = rateLimitWait(res.headers, text);
        if (waitS > MAX_RATE_LIMIT_WAIT_S)
          throw new ApiError(
            `${where}: rate limited, and the API asks to wait ${waitS}s`,
            429,
            apiMessage(text),
            'wait for the rate limit to reset and run again',
          );
        if (++rateWaits > this.maxRateLimitWaits)
          throw new ApiError(
            `${where}: still rate limited after ${rateWaits - 1} waits`,
            429,
            apiMessage(text),
            'wait a minute and run again, or poll less often',
          );
        this.io.log.warn({ waitSeconds: waitS, method, path: url.pathname }, `rate limited by the API; waiting ${waitS}s before retrying`);
        await this.io.sleep(waitS * 1000);
        attempt--; // a 429 was not processed: it does not count as a failed attempt
        continue;
      }
      if (res.statusCode >= 500) {
        const text = await res.body.text().catch(() => '');
        const msg = `${where}: the API answered ${res.statusCode}${apiMessage(text) ? `: ${apiMessage(text)}` : ''}`;
        if (!idempotent) throw new AmbiguousRequestError(msg);
        if (attempt >= this.maxAttempts)
          throw new ApiError(
            `${msg} (gave up after ${attempt} attempts)`,
            res.statusCode,
            apiMessage(text),
            'Buildkite may be having an incident; try again later',
          );
        // A 503 may say when to come back; honour it (up to a minute) if it is longer than the backoff.
        const after = headerValue(res.headers, 'retry-after') !== undefined ? Math.min(60, rateLimitWait(res.headers, '')) * 1000 : 0;
        await this.backoff(attempt, msg, after);
        continue;
      }
      const location = headerValue(res.headers, 'location');
      if (res.statusCode >= 300 && res.statusCode < 400 && location && !opts.redirects) {
        // The API moved (a trailing slash, a renamed slug): follow it on the same host, with the
        // token; never to another host, and never turn a POST into a GET.
        await res.body.dump().catch(() => undefined);
        const target = new URL(location, url);
        if (target.origin !== this.base.origin) {
          throw new ApiError(
            `${where}: the API redirected to ${target.origin}${target.pathname} (${res.statusCode}); not following it with the token`,
            res.statusCode,
            undefined,
            `if that is where the API lives, set BUILDKITE_API_URL (or --api-url) to ${target.origin}/v2`,
          );
        }
        const keepsMethod = res.statusCode === 307 || res.statusCode === 308;
        if (method !== 'GET' && !keepsMethod)
          throw new ApiError(
            `${where}: the API answered ${res.statusCode} (moved to ${target.pathname}); not resending a ${method} as a GET`,
            res.statusCode,
            undefined,
          );
        if (++hops > MAX_REDIRECTS) throw new ApiError(`${where}: more than ${MAX_REDIRECTS} redirects`, res.statusCode, undefined);
        this.io.log.debug({ from: url.pathname, to: target.pathname, status: res.statusCode }, 'following the API redirect');
        url = target;
        where = `${method} ${url.pathname}`;
        attempt--; // a redirect is not a failed attempt
        continue;
      }
      if (res.statusCode >= 400 || (res.statusCode >= 300 && !opts.redirects)) {
        const text = await res.body.text().catch(() => '');
        throw errorFor(res.statusCode, text, method, url, opts, url.origin === this.base.origin);
      }
      try {
        return await consume(res.body, response);
      } catch (err) {
        if (err instanceof BkciError || !isNetworkError(err)) throw err;
        const reason = describeNetworkError(err);
        if (!idempotent) throw new AmbiguousRequestError(`${where}: ${reason} while reading the answer`, err);
        if (attempt >= this.maxAttempts) throw new NetworkError(`${where}: ${reason} (gave up after ${attempt} attempts)`);
        await this.backoff(attempt, `${where}: ${reason}`);
      }
    }
  }

  private async backoff(attempt: number, why: string, atLeast = 0): Promise<void> {
    const ms = Math.max(atLeast, backoffDelay(attempt, this.random));
    this.io.log.warn({ attempt, retryInMs: ms }, redact(`${why}; retrying`));
    await this.io.sleep(ms);
  }
}

// A response body as text, decoded if a server compressed it without being asked to.
async function bodyText(body: Dispatcher.ResponseData['body'], res: Response): Promise<string> {
  const encoding = (headerValue(res.headers, 'content-encoding') ?? '').trim().toLowerCase();
  if (!encoding || encoding === 'identity') return body.text();
  const raw = Buffer.from(await body.arrayBuffer());
  const zlib = await import('node:zlib');
  if (encoding === 'gzip' || encoding === 'x-gzip') return zlib.gunzipSync(raw).toString('utf8');
  if (encoding === 'deflate') return zlib.inflateSync(raw).toString('utf8');
  if (encoding === 'br') return zlib.brotliDecompressSync(raw).toString('utf8');
  throw new ApiError(`the API answered with an unknown content encoding: ${encoding}`, res.status, undefined);
}

// Full-jitter exponential backoff: a random delay up to min(cap, base * 2^(attempt-1)), at least 100 ms.
export function backoffDelay(attempt: number, random: () => number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return Math.max(100, Math.round(random() * ceiling));
}

// Seconds to wait on a 429: RateLimit-Reset, else Retry-After (seconds or an HTTP date), else the
// body's `reset`, else 60. Never less than 1.
export function rateLimitWait(headers: Response['headers'], body: string, now = Date.now()): number {
  const resetText = headerValue(headers, 'ratelimit-reset');
  const reset = resetText === undefined || resetText.trim() === '' ? NaN : Number(resetText);
  // Seconds until the reset (Buildkite); a value that large is an epoch time instead.
  if (Number.isFinite(reset) && reset >= 1e9) return Math.max(1, Math.ceil(reset - now / 1000));
  if (Number.isFinite(reset) && reset >= 0) return Math.max(1, Math.ceil(reset));
  const after = headerValue(headers, 'retry-after');
  if (after !== undefined) {
    const n = Number(after);
    if (Number.isFinite(n)) return Math.max(1, Math.ceil(n));
    const date = Date.parse(after);
    if (!Number.isNaN(date)) return Math.max(1, Math.ceil((date - now) / 1000));
  }
  try {
    const r = (JSON.parse(body) as { reset?: unknown }).reset;
    if (typeof r === 'number' && r > 0) return Math.ceil(r);
  } catch {
    // not JSON
  }
  return 60;
}

export function headerValue(headers: Response['headers'], name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

// `<url>; rel="next", <url>; rel="last"` → Map rel → url. Commas inside <...> are part of the URL;
// a rel may list several relation types.
export function parseLinkHeader(header: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /<([^>]*)>((?:\s*;\s*[^;,<=\s]+(?:\s*=\s*(?:"[^"]*"|[^;,<]*))?)*)/g;
  for (let m = re.exec(header); m; m = re.exec(header)) {
    const params = m[2] ?? '';
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]+))/i.exec(params);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').trim().split(/\s+/).filter(Boolean);
    for (const r of rels) if (!out.has(r.toLowerCase())) out.set(r.toLowerCase(), m[1]!);
  }
  return out;
}

function apiMessage(text: string): string | undefined {
  try {
    const j = JSON.parse(text) as { message?: unknown; errors?: unknown };
    if (typeof j.message !== 'string') return undefined;
    const errors = Array.isArray(j.errors) ? j.errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('; ') : '';
    return errors ? `${j.message} (${errors})` : j.message;
  } catch {
    return undefined;
  }
}

function errorFor(status: number, text: string, method: Method, url: URL, opts: RequestOptions, apiOrigin: boolean): ApiError {
  const msg = apiMessage(text);
  const where = `${method} ${url.pathname}`;
  const said = msg ? `: ${msg}` : '';
  // The storage host refusing a signed URL is a failed download (1), not a bad token or slug.
  if (!apiOrigin)
    return new ApiError(
      `the artifact storage at ${url.origin} answered ${status}${said}`,
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
        opts.scope
          ? `give the token the \`${opts.scope}\` scope (and access to the organization) at https://buildkite.com/user/api-access-tokens`
          : 'check the token’s scopes and organization access',
      );
    case 404:
      return new ApiError(
        `not found: ${opts.what ?? url.pathname} (404)${said}`,
        status,
        msg,
        'check the organization and pipeline slugs (--org, --pipeline) and the build number',
      );
    default:
      return new ApiError(`the API refused ${where} (${status})${said}`, status, msg);
  }
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function isNetworkError(err: unknown): boolean {
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  return (
    (typeof e?.code === 'string' && (e.code.startsWith('UND_ERR') || NETWORK_CODES.has(e.code))) ||
    (typeof e?.cause?.code === 'string' && NETWORK_CODES.has(e.cause.code))
  );
}

// OpenSSL's verification results as Node names them, and Node's host name check.
const CERT_CODES =
  /^(?:UNABLE_TO_|CERT_|CRL_|ERROR_IN_CERT|ERROR_IN_CRL|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|INVALID_CA$|PATH_LENGTH_EXCEEDED$|INVALID_PURPOSE$|HOSTNAME_MISMATCH$|ERR_TLS_CERT_ALTNAME_INVALID$)/;

function certificateProblem(err: unknown): { reason: string; hint: string } | undefined {
  const e = err as { code?: unknown; message?: string; cause?: { code?: unknown; message?: string } };
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

function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT' || e?.code === 'UND_ERR_CONNECT_TIMEOUT') return 'the request timed out';
  if (e?.code === 'UND_ERR_SOCKET') return 'the connection was closed by the server';
  const code = e?.code ?? e?.cause?.code;
  return `${e?.message ?? String(err)}${code && !(e?.message ?? '').includes(code) ? ` (${code})` : ''}`;
}
