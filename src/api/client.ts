// The one HTTP client for Buildkite's REST API (undici). It adds the auth header and user agent,
// follows `Link: rel="next"` pages, and applies the retry policy of retry.ts (a pure decision per
// failed attempt) in one thin loop: wait, follow, give up, or hand an ambiguous create back to the
// caller (see createBuild). Every exchange is bounded: a JSON answer must arrive whole within the
// timeout and within 64 MiB; a streamed body (a log, an artifact) must keep moving. io.signal
// (Ctrl-C) stops everything at once. The token never leaves this module except in the header.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { BkciError, Interrupted } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { REDACTED, redact } from '../util/redact.js';
import { ApiError, clip, decide, quote, headerValue, isNetworkError, isTransportError, parseUrl, type Headers, type Method, type Outcome } from './retry.js';

export { AmbiguousRequestError, ApiError, NetworkError, backoffDelay, headerValue, rateLimitWait, type Method } from './retry.js';

export type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

export interface ClientOptions {
  apiUrl: string;
  token: string;
  userAgent: string;
  io: Io;
  // A JSON answer must arrive whole within this; a streamed body may not stall this long.
  timeoutMs?: number;
  // Attempts for network errors and 5xx on idempotent requests.
  maxAttempts?: number;
  // Rate-limit waits before giving up.
  maxRateLimitWaits?: number;
  // The largest JSON (or error) answer read.
  maxJsonBytes?: number;
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
  // Give up rather than retry past this time (epoch ms on the Io clock): `build wait --timeout`.
  deadline?: number;
}

export interface Response {
  status: number;
  headers: Headers;
  url: URL;
}

// A streamed answer's bytes, checked as they arrive (see ApiClient.chunks).
export type Chunks = AsyncIterable<Buffer>;

export const MAX_JSON_BYTES = 64 * 1024 * 1024;
// A streamed body must bring at least this much per timeout period (a body trickling one byte a
// second never trips an idle timeout).
const MIN_BYTES_PER_PERIOD = 16 * 1024;
// Pages of one list read at most (10,000 items at Buildkite's 100 a page): past this, a server
// still naming a next page with new items is taken to be one whose Link headers never end.
export const MAX_PAGES = 100;
// Download redirects (API -> signed storage URL) followed.
const MAX_DOWNLOAD_HOPS = 6;

interface ExchangeOptions extends RequestOptions {
  noAuth?: boolean;
  // 3xx answers with a Location go to `consume` (downloads follow them across hosts themselves).
  passRedirects?: boolean;
  // The body is streamed to the caller: no whole-exchange timeout, a minimum rate instead.
  streamed?: boolean;
}

type Consume<T> = (body: Dispatcher.ResponseData['body'], res: Response) => Promise<T>;

class TimeoutError extends Error {
  readonly code = 'ERR_BKCI_TIMEOUT';
}

export class ApiClient {
  readonly base: URL;
  private readonly token: string;
  private readonly io: Io;
  readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly maxRateLimitWaits: number;
  private readonly maxJsonBytes: number;
  private readonly random: () => number;
  private readonly userAgent: string;
  private dispatcher: Dispatcher | undefined;
  private undici: typeof import('undici') | undefined;

  constructor(opts: ClientOptions) {
    // One trailing slash, whatever was given (`…/v2`, `…/v2/`, `…/v2//`), no query or fragment:
    // API paths resolve under it.
    const base = new URL(opts.apiUrl);
    base.pathname = base.pathname.replace(/\/+$/, '') + '/';
    base.search = '';
    base.hash = '';
    this.base = base;
    this.token = opts.token;
    this.io = opts.io;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.maxRateLimitWaits = opts.maxRateLimitWaits ?? 10;
    this.maxJsonBytes = opts.maxJsonBytes ?? MAX_JSON_BYTES;
    this.random = opts.random ?? Math.random;
    this.userAgent = opts.userAgent;
  }

  // Resolves an API path (`organizations/x/builds`) or absolute URL against the base URL.
  url(pathOrUrl: string, query?: Query): URL {
    const u = /^https?:\/\//i.test(pathOrUrl) ? parseUrl(pathOrUrl, this.base) : parseUrl(pathOrUrl.replace(/^\/+/, ''), this.base);
    if (!u) throw new ApiError(`the API gave a URL bkci cannot use: ${quote(pathOrUrl)}`, 0, undefined);
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

  // A text answer (a job log) streamed to `write` chunk by chunk, decoded as UTF-8: constant
  // memory whatever its size (`write` is awaited: a slow reader of the output slows the download). Once a byte has been handed on, a broken connection is an error,
  // not a retry (the part written cannot be taken back).
  async streamText(path: string, write: (text: string) => void | Promise<void>, opts: RequestOptions = {}): Promise<number> {
    const url = this.url(path, opts.query);
    return this.exchange('GET', url, { ...opts, accept: opts.accept ?? 'text/plain', streamed: true }, async (body, res) => {
      // A log is plain text: an HTML page in its place is a captive portal or a proxy's login
      // page, not something to print as the log.
      const type = (headerValue(res.headers, 'content-type') ?? '').toLowerCase();
      if (/^\s*(?:text\/html|application\/xhtml\+xml)\b/.test(type)) {
        const page = await this.readText(body, res, `GET ${url.pathname}`, 64 * 1024).catch(() => '');
        throw new ApiError(
          `GET ${url.pathname}: the answer is an HTML page (${clip(type, 60)}), not a log: ${quote(page, 120)}`,
          res.status,
          undefined,
          'a proxy or captive portal may be answering for the API: check the network and --api-url / BUILDKITE_API_URL',
        );
      }
      const decoder = new TextDecoder('utf-8');
      const hide = redactor(this.token);
      let bytes = 0;
      try {
        for await (const chunk of this.chunks(body, res)) {
          bytes += chunk.length;
          const text = hide(decoder.decode(chunk, { stream: true }));
          if (text) await write(text);
        }
      } catch (err) {
        if (bytes === 0 || err instanceof BkciError) throw err;
        throw new ApiError(
          `GET ${url.pathname}: the answer broke off after ${bytes} bytes (${(err as Error).message})`,
          res.status,
          undefined,
          'run the command again',
        );
      }
      const rest = hide(decoder.decode(), true);
      if (rest) await write(rest);
      return bytes;
    });
  }

  // Every item of a paginated list, following `Link: rel="next"` until it is absent.
  async *paginate<T>(path: string, opts: RequestOptions = {}): AsyncGenerator<T> {
    let next: URL | undefined = this.url(path, { per_page: 100, ...opts.query });
    const seen = new Set<string>();
    const ids = new Set<string>();
    while (next) {
      if (seen.size >= MAX_PAGES)
        throw new ApiError(
          `GET ${next.pathname}: gave up after ${MAX_PAGES} pages (${ids.size || 'no'} items with ids): the API's Link headers keep naming a next page; bkci reads at most ${MAX_PAGES} pages of a list`,
          0,
          undefined,
          'a list this long is most likely a server (or proxy) whose pages never end: check --api-url / BUILDKITE_API_URL',
        );
      if (seen.has(next.href)) throw new ApiError(`the API's Link header points back to a page already read (${next.pathname}${next.search})`, 0, undefined);
      seen.add(next.href);
      const { data, response }: { data: unknown; response: Response } = await this.jsonWithResponse<unknown>('GET', next, opts);
      if (!Array.isArray(data))
        throw new ApiError(`expected a list from ${next.pathname}, got ${data === null ? 'null' : typeof data}`, response.status, undefined);
      let fresh = 0;
      for (const item of data) {
        // A list that changes while it is read (a new build pushes the others down a page) shows
        // an item twice: once is enough.
        const id = (item as { id?: unknown } | null)?.id;
        if (typeof id === 'string') {
          if (ids.has(id)) continue;
          ids.add(id);
        }
        fresh++;
        yield item as T;
      }
      const link = headerValue(response.headers, 'link');
      const rel = link ? parseLinkHeader(link).get('next') : undefined;
      if (rel === undefined) break;
      next = parseUrl(rel, response.url);
      if (!next) throw new ApiError(`the API's Link header names a next page that is not a URL: ${quote(rel)}`, response.status, undefined);
      // The token goes with every page: never to a host other than the API's.
      if (next.origin !== this.base.origin)
        throw new ApiError(`the API's Link header points to another host (${next.origin}); not following it with the token`, response.status, undefined);
      // A page that brought nothing new (empty, or only items already shown) ends the list even
      // if the Link header names another: a server whose pages never end stops here, not after
      // a thousand requests.
      if (fresh === 0) {
        this.io.log.warn({ path: next.pathname, page: seen.size }, 'the API named a next page after a page with no new items; taking the list as complete');
        break;
      }
    }
  }

  private async jsonWithResponse<T>(method: Method, url: URL, opts: RequestOptions): Promise<{ data: T; response: Response }> {
    let response: Response | undefined;
    const data = await this.exchange(method, url, { ...opts, accept: opts.accept ?? 'application/json' }, async (body, res) => {
      response = res;
      const text = await this.readText(body, res, `${method} ${url.pathname}`);
      if (text.trim() === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ApiError(`the API answered ${method} ${url.pathname} with a body that is not JSON: ${quote(text, 120)}`, res.status, undefined);
      }
    });
    return { data, response: response! };
  }

  // Downloads `url` (an artifact's download URL): follows redirects itself, sending the
  // Authorization header only to the API's own origin, and hands the final body to `sink`.
  async download<T>(url: string, sink: (body: Chunks, res: Response) => Promise<T>, opts: RequestOptions = {}): Promise<T> {
    let target = this.url(url);
    for (let hop = 0; hop < MAX_DOWNLOAD_HOPS; hop++) {
      const auth = target.origin === this.base.origin;
      const from = target;
      const step = await this.exchange(
        'GET',
        target,
        { ...opts, accept: '*/*', noAuth: !auth, passRedirects: true, streamed: true },
        async (body, res): Promise<{ redirect: URL } | { value: T }> => {
          const location = headerValue(res.headers, 'location');
          if (res.status >= 300 && res.status < 400 && location !== undefined) {
            // (Not read: a body that never ends would hold the redirect.)
            discard(body);
            return { redirect: this.downloadTarget(location, from, res.status) };
          }
          // Buildkite may answer the download endpoint with `{"url": "<signed url>"}`.
          const type = headerValue(res.headers, 'content-type') ?? '';
          if (auth && type.includes('application/json')) {
            const text = await this.readText(body, res, `GET ${from.pathname}`);
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              throw new ApiError(`the download endpoint answered a body that is not JSON: ${quote(text, 120)}`, res.status, undefined);
            }
            const u = (parsed as { url?: unknown } | null)?.url;
            if (typeof u === 'string') return { redirect: this.downloadTarget(u, from, res.status) };
            throw new ApiError(`the download endpoint answered JSON without a url`, res.status, undefined);
          }
          return { value: await sink(this.chunks(body, res), res) };
        },
      );
      if ('value' in step) return step.value;
      this.io.log.debug({ to: step.redirect.origin, authorization: step.redirect.origin === this.base.origin }, 'following the download redirect');
      target = step.redirect;
    }
    throw new ApiError(`too many redirects downloading ${this.url(url).pathname}`, 0, undefined);
  }

  private downloadTarget(location: string, from: URL, status: number): URL {
    const to = parseUrl(location, from);
    if (!to || (to.protocol !== 'https:' && to.protocol !== 'http:'))
      throw new ApiError(`GET ${from.pathname}: the download redirect does not lead to an http(s) URL: ${quote(location)}`, status, undefined);
    return to;
  }

  close(): Promise<void> {
    const d = this.dispatcher;
    this.dispatcher = undefined;
    return d ? d.destroy() : Promise.resolve();
  }

  private async load(): Promise<{ undici: typeof import('undici'); dispatcher: Dispatcher }> {
    this.undici ??= await import('undici');
    this.dispatcher ??= new this.undici.Agent({ keepAliveTimeout: 4_000, connect: { timeout: this.timeoutMs } });
    return { undici: this.undici, dispatcher: this.dispatcher };
  }

  private interrupted(): BkciError | undefined {
    const s = this.io.signal;
    if (!s?.aborted) return undefined;
    return s.reason instanceof BkciError ? s.reason : new Interrupted();
  }

  // One logical request: the retry decisions of retry.ts applied to each attempt's outcome.
  // `consume` reads the body of a successful answer inside the loop, so a connection lost mid-body
  // is retried as well (unless consume has already handed bytes on and says so with a BkciError).
  private async exchange<T>(method: Method, requested: URL, opts: ExchangeOptions, consume: Consume<T>): Promise<T> {
    let url = requested;
    const n = { attempt: 0, rateWaits: 0, hops: 0 };
    for (;;) {
      const stop = this.interrupted();
      if (stop) throw stop;
      const tried = await this.attempt(method, url, opts, consume);
      if ('value' in tried) return tried.value;
      const outcome = tried.outcome;
      if (outcome.kind === 'network' || outcome.status >= 500) n.attempt++;
      const d = decide(outcome, n, {
        method,
        url,
        apiOrigin: this.base.origin,
        maxAttempts: this.maxAttempts,
        maxRateLimitWaits: this.maxRateLimitWaits,
        now: this.io.now().getTime(),
        deadline: opts.deadline,
        random: this.random,
        scope: opts.scope,
        what: opts.what,
      });
      if ('giveUp' in d) throw d.giveUp;
      if ('lookUpBuild' in d) throw d.lookUpBuild;
      if ('redirect' in d) {
        n.hops++;
        this.io.log.debug({ from: url.pathname, to: d.redirect.pathname }, 'following the API redirect');
        url = d.redirect;
        continue;
      }
      if (d.rateLimited) {
        n.rateWaits++;
        this.io.log.warn({ waitSeconds: d.retryAfterMs / 1000, method, path: url.pathname }, redact(d.why));
      } else {
        this.io.log.warn({ attempt: n.attempt, retryInMs: d.retryAfterMs }, redact(`${d.why}; retrying in ${formatSeconds(d.retryAfterMs)}`));
      }
      await this.io.sleep(d.retryAfterMs, this.io.signal).catch((err: unknown) => {
        throw this.interrupted() ?? err;
      });
    }
  }

  // One attempt: the consumed answer, or what went wrong as an outcome for decide(). An interrupt
  // and errors that are not the server's or the network's (bkci's own, a too-large answer) throw.
  private async attempt<T>(method: Method, url: URL, opts: ExchangeOptions, consume: Consume<T>): Promise<{ value: T } | { outcome: Outcome }> {
    const { undici, dispatcher } = await this.load();
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: opts.accept ?? 'application/json' };
    if (!opts.noAuth) headers.authorization = `Bearer ${this.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    // The whole exchange of a JSON answer is bounded (headers and body); a streamed body only by
    // its rate (chunks) and undici's idle timeout.
    const limit = new AbortController();
    const remaining = opts.deadline === undefined ? Infinity : opts.deadline - this.io.now().getTime();
    const totalMs = Math.min(this.timeoutMs, Math.max(1000, remaining));
    const timer = opts.streamed
      ? undefined
      : setTimeout(() => limit.abort(new TimeoutError(`the request timed out (no complete answer within ${formatSeconds(totalMs)})`)), totalMs);
    const signal = this.io.signal ? AbortSignal.any([this.io.signal, limit.signal]) : limit.signal;
    // What an error thrown while talking to the server means.
    const failure = (err: unknown, reading: boolean): { outcome: Outcome } => {
      const stopped = this.interrupted();
      if (stopped) throw stopped;
      if (limit.signal.aborted) return { outcome: { kind: 'network', error: limit.signal.reason, reading } };
      if (err instanceof BkciError || !isTransportError(err)) throw err;
      return { outcome: { kind: 'network', error: err, reading } };
    };
    const started = Date.now();
    try {
      const res = await undici.request(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        dispatcher,
        signal,
        headersTimeout: this.timeoutMs,
        // A streamed body is watched by chunks(), which does not count our own consumer's time.
        bodyTimeout: opts.streamed ? 0 : this.timeoutMs,
      });
      const where = `${url.origin}${url.pathname}${url.search}`;
      this.io.log.debug(
        { method, url: where, status: res.statusCode, ms: Date.now() - started, authorization: opts.noAuth ? 'none' : 'Bearer [REDACTED]' },
        'api request',
      );
      const response: Response = { status: res.statusCode, headers: res.headers, url };
      const passed = opts.passRedirects && res.statusCode >= 300 && res.statusCode < 400 && headerValue(res.headers, 'location') !== undefined;
      if ((res.statusCode < 200 || res.statusCode >= 300) && !passed) {
        const text = await this.readText(res.body, response, `${method} ${url.pathname}`, 64 * 1024).catch(() => '');
        return { outcome: { kind: 'status', status: res.statusCode, headers: res.headers, body: text } };
      }
      try {
        return { value: await consume(res.body, response) };
      } catch (err) {
        discard(res.body);
        return failure(err, true);
      }
    } catch (err) {
      return failure(err, false);
    } finally {
      clearTimeout(timer);
    }
  }

  // A whole (small) answer as text, at most `max` bytes (more is an error naming the request).
  private async readText(body: Readable, res: Response, where: string, max = this.maxJsonBytes): Promise<string> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const c of this.chunks(body, res)) {
      size += c.length;
      if (size > max)
        throw new ApiError(
          `${where}: the answer is larger than ${formatBytesShort(max)}; not reading more of it`,
          res.status,
          undefined,
          'check --api-url points at the Buildkite REST API (…/v2)',
        );
      parts.push(c);
    }
    return Buffer.concat(parts).toString('utf8');
  }

  // A body, decoded, chunk by chunk, checked to keep moving: the server may not be silent for a
  // timeout period, and each timeout period spent waiting for it must bring at least 16 KiB. Only
  // the time spent waiting for the server counts: while the caller holds a chunk (a stdout reader
  // that does not read, a write(2) blocking the whole process on a full pipe) the clock stops, so
  // backpressure from our own consumer is never taken for a silent server. (undici's own body
  // timeout would count that time: streamed exchanges turn it off and rely on this.)
  private async *chunks(raw: Readable, res: Response): AsyncGenerator<Buffer> {
    let waited = 0;
    let windowBytes = 0;
    let pulled = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      timer = setTimeout(check, ms);
    };
    // The event loop's clock may be stale after a blocking write: the real one decides.
    const check = () => {
      const silent = performance.now() - pulled;
      if (silent < this.timeoutMs) return arm(this.timeoutMs - silent);
      raw.destroy(new TimeoutError(`the request timed out: ${res.url.origin} sent nothing for ${formatSeconds(silent)}`));
    };
    try {
      arm(this.timeoutMs);
      for await (const c of bytesOf(raw, res)) {
        clearTimeout(timer);
        const now = performance.now();
        waited += now - pulled;
        windowBytes += c.length;
        if (waited >= this.timeoutMs) {
          if (windowBytes < MIN_BYTES_PER_PERIOD)
            throw new TimeoutError(
              `the request timed out: the answer from ${res.url.origin} arrives too slowly (${windowBytes} bytes in ${formatSeconds(waited)}; at least ${MIN_BYTES_PER_PERIOD} are expected)`,
            );
          waited = 0;
          windowBytes = 0;
        }
        yield c;
        pulled = performance.now();
        arm(this.timeoutMs);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

// Replaces `secret` in a text that arrives in parts (a log that printed the token). Only a tail
// that could be the start of the secret waits for the next part, so a secret split between parts
// is found and everything else is passed on at once.
function redactor(secret: string): (text: string, end?: boolean) => string {
  let held = '';
  return (text, end = false) => {
    const all = (held + text).split(secret).join(REDACTED);
    let keep = 0;
    if (!end) for (let k = Math.min(all.length, secret.length - 1); k > 0 && keep === 0; k--) if (all.endsWith(secret.slice(0, k))) keep = k;
    held = all.slice(all.length - keep);
    return all.slice(0, all.length - keep);
  };
}

// The body's bytes, decoded if a server compressed it (gzip, deflate, br). A corrupt stream is
// the server's fault, named as such (not retried: it would come back the same).
async function* bytesOf(body: Readable, res: Response): AsyncGenerator<Buffer> {
  const encoding = (headerValue(res.headers, 'content-encoding') ?? '').trim().toLowerCase();
  try {
    if (!encoding || encoding === 'identity') {
      yield* body as AsyncIterable<Buffer>;
      return;
    }
    const zlib = await import('node:zlib');
    const decoder =
      encoding === 'gzip' || encoding === 'x-gzip'
        ? zlib.createGunzip()
        : encoding === 'deflate'
          ? zlib.createInflate()
          : encoding === 'br'
            ? zlib.createBrotliDecompress()
            : undefined;
    if (!decoder)
      throw new ApiError(`the answer from ${res.url.origin}${res.url.pathname} has an unknown content encoding: ${clip(encoding, 40)}`, res.status, undefined);
    const { pipeline } = await import('node:stream');
    pipeline(body, decoder, () => undefined);
    try {
      yield* decoder as AsyncIterable<Buffer>;
    } catch (err) {
      if (err instanceof BkciError || isNetworkError(err) || (err as Error).name === 'AbortError') throw err;
      const code = (err as { code?: unknown }).code;
      throw new ApiError(
        `the answer from ${res.url.origin}${res.url.pathname} is not valid ${encoding} data${typeof code === 'string' ? ` (${code})` : ''}`,
        res.status,
        undefined,
      );
    } finally {
      discard(decoder);
    }
  } finally {
    discard(body);
  }
}

// Drops what is left of a stream; destroying one that is not finished makes it emit an error,
// which nobody is listening for any more.
function discard(s: Readable | import('node:stream').Duplex): void {
  if (s.destroyed) return;
  s.on('error', () => undefined);
  s.destroy();
}

function formatSeconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10}s` : `${Math.round(ms)}ms`;
}

function formatBytesShort(n: number): string {
  return n >= 1024 * 1024 ? `${Math.round(n / 1024 / 1024)} MiB` : n >= 1024 ? `${Math.round(n / 1024)} KiB` : `${n} bytes`;
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
