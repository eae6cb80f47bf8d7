// A fake Buildkite REST API for the tests: real HTTP on 127.0.0.1, seeded from the documented
// response bodies in test/fixtures/buildkite/api-examples, plus a second origin standing in for the
// artifact storage that downloads redirect to. Faults (dropped connections, 429, 5xx) are queued
// per route so a test can make the server misbehave exactly once or several times.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const BUILDKITE = join(import.meta.dirname, '../fixtures/buildkite');
export const example = (name: string): any => JSON.parse(readFileSync(join(BUILDKITE, 'api-examples', `${name}.json`), 'utf8'));

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

// drop: close the connection unanswered; drop-after: do the work, then close; status: answer
// `status` with `body` instead of doing the work; hang: never answer; mangle-after: do the work,
// then answer `status` (200) with `body` as raw text (an HTML page, nothing, the wrong JSON).
export type FaultKind = 'drop' | 'drop-after' | 'status' | 'hang' | 'mangle-after';
export interface Fault {
  method: string;
  path: RegExp;
  kind: FaultKind;
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  times: number;
  // Matching requests to let through before the fault starts.
  skip?: number;
}

export interface JobSeed {
  name: string;
  state: string;
  key?: string;
  group?: string;
  soft_failed?: boolean;
  queue?: string;
  log?: string;
  started_at?: string;
  finished_at?: string;
}

export interface ArtifactSeed {
  path: string;
  content: string | Buffer;
  job?: number; // index into the build's jobs
  wrongSha?: boolean;
}

interface StoredBuild {
  build: any;
  states: string[]; // states still to come, one per GET
  artifacts: { json: any; content: Buffer }[];
}

export class FakeBuildkite {
  token = 'bkua_faketoken0123456789abcdef';
  org = 'gpu-org';
  pipeline = 'gpu-tests';
  perPageMax = 100;
  requests: Recorded[] = [];
  storageRequests: Recorded[] = [];
  faults: Fault[] = [];
  builds = new Map<number, StoredBuild>();
  agents: any[] = [];
  // More pipelines the organization lists besides ours (for did-you-mean).
  otherPipelines: string[] = [];
  // When set, listing builds ignores every filter (branch, state, meta_data), as a careless server might.
  ignoreFilters = false;
  // When set, the storage host answers this status (an expired signature, say).
  storageFail: number | undefined;
  logs = new Map<string, string>();
  private nextNumber = 100;
  private api!: Server;
  private storage!: Server;
  apiOrigin = '';
  storageOrigin = '';

  get url(): string {
    return `${this.apiOrigin}/v2`;
  }

  get env(): Record<string, string> {
    return { BUILDKITE_API_TOKEN: this.token, BUILDKITE_ORGANIZATION_SLUG: this.org, BUILDKITE_PIPELINE_SLUG: this.pipeline, BUILDKITE_API_URL: this.url };
  }

  // tls: serve the API over HTTPS with this key and certificate (the storage host stays HTTP).
  async start(opts: { tls?: { key: string; cert: string } } = {}): Promise<this> {
    // A bug in the fake answers 599 with the error instead of leaving the client waiting.
    const guard = (h: (q: IncomingMessage, s: ServerResponse) => Promise<void>) => (q: IncomingMessage, s: ServerResponse) =>
      void h(q, s).catch((err: unknown) => {
        if (!s.headersSent) send(s, 599, { message: `fake server error: ${String(err)}` });
        else s.destroy();
      });
    const api = guard((req, res) => this.handleApi(req, res));
    this.api = opts.tls ? createHttpsServer(opts.tls, api) : createServer(api);
    this.storage = createServer(guard((req, res) => this.handleStorage(req, res)));
    this.apiOrigin = await listen(this.api, opts.tls ? 'https' : 'http');
    this.storageOrigin = await listen(this.storage);
    return this;
  }

  async close(): Promise<void> {
    for (const s of [this.api, this.storage]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  }

  fault(method: string, path: RegExp, kind: FaultKind, extra: Partial<Fault> = {}): void {
    this.faults.push({ method, path, kind, times: 1, ...extra });
  }

  private buildsPath(): string {
    return `/v2/organizations/${this.org}/pipelines/${this.pipeline}/builds`;
  }

  // Adds a build from the documented example with the given jobs; `states[0]` is its state when
  // created; every GET of the build first moves it to the next state (the last one stays).
  addBuild(opts: {
    states: string[];
    jobs?: JobSeed[];
    branch?: string;
    blocked_state?: string;
    artifacts?: ArtifactSeed[];
    meta_data?: Record<string, string>;
    number?: number;
  }): any {
    const n = opts.number ?? this.nextNumber++;
    const base = example('builds__get_a_build');
    const jobTemplate = base.jobs[0];
    const build = {
      ...base,
      id: randomUUID(),
      number: n,
      state: opts.states[0],
      blocked_state: opts.blocked_state ?? '',
      branch: opts.branch ?? 'main',
      url: `${this.url}/organizations/${this.org}/pipelines/${this.pipeline}/builds/${n}`,
      web_url: `https://buildkite.com/${this.org}/${this.pipeline}/builds/${n}`,
      meta_data: opts.meta_data ?? {},
      created_at: new Date(Date.UTC(2026, 10, 23, 10, 0, n % 60)).toISOString(),
      jobs: (opts.jobs ?? [{ name: 'tests', state: opts.states[0] === 'passed' ? 'passed' : 'running' }]).map((j, i) => {
        const id = `00000000-0000-4000-8000-${String(n).padStart(6, '0')}${String(i).padStart(6, '0')}`;
        if (j.log !== undefined) this.logs.set(id, j.log);
        return {
          ...jobTemplate,
          id,
          name: j.name,
          step_key: j.key ?? j.name.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
          group_key: j.group ?? null,
          state: j.state,
          soft_failed: j.soft_failed ?? false,
          exit_status: j.state === 'failed' ? 1 : j.state === 'passed' ? 0 : null,
          agent_query_rules: [`queue=${j.queue ?? 'gpu'}`],
          web_url: `https://buildkite.com/${this.org}/${this.pipeline}/builds/${n}#${id}`,
          started_at: j.started_at ?? '2026-11-23T10:00:00.000Z',
          finished_at: j.finished_at ?? (['passed', 'failed', 'canceled'].includes(j.state) ? '2026-11-23T10:12:30.000Z' : null),
          retried: false,
          retried_in_job_id: null,
        };
      }),
    };
    const artifacts = (opts.artifacts ?? []).map((a) => {
      const content = Buffer.from(a.content);
      const id = randomUUID();
      const job = build.jobs[a.job ?? 0];
      const json = {
        ...example('artifacts__get_an_artifact'),
        id,
        job_id: job.id,
        path: a.path,
        filename: a.path.split('/').pop(),
        file_size: content.length,
        sha1sum: a.wrongSha ? '0'.repeat(40) : createHash('sha1').update(content).digest('hex'),
        state: 'finished',
        url: `${this.url}/organizations/${this.org}/pipelines/${this.pipeline}/builds/${n}/jobs/${job.id}/artifacts/${id}`,
        download_url: `${this.url}/organizations/${this.org}/pipelines/${this.pipeline}/builds/${n}/jobs/${job.id}/artifacts/${id}/download`,
      };
      return { json, content };
    });
    this.builds.set(n, { build, states: opts.states.slice(1), artifacts });
    return build;
  }

  buildCount(): number {
    return this.builds.size;
  }

  private async handleStorage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.storageOrigin);
    this.storageRequests.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body: '' });
    if (this.storageFail) return send(res, this.storageFail, { message: 'Request has expired' });
    const id = url.pathname.replace(/^\/blob\//, '');
    for (const s of this.builds.values()) {
      const a = s.artifacts.find((x) => x.json.id === id);
      if (a) {
        if (req.headers.authorization) return send(res, 400, { message: 'storage got an Authorization header' });
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': a.content.length });
        return void res.end(a.content);
      }
    }
    send(res, 404, { message: 'no such blob' });
  }

  private async handleApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await new Promise<string>((resolve) => {
      let s = '';
      req.on('data', (c: Buffer) => (s += c.toString()));
      req.on('end', () => resolve(s));
    });
    const url = new URL(req.url ?? '/', this.apiOrigin);
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: url.searchParams, headers: req.headers, body });

    let fault = this.faults.find((f) => f.times > 0 && f.method === method && f.path.test(url.pathname));
    if (fault?.skip) {
      fault.skip--;
      fault = undefined;
    }
    let dropAfter = false;
    let mangle: Fault | undefined;
    if (fault) {
      fault.times--;
      if (fault.kind === 'drop') return void req.socket.destroy();
      if (fault.kind === 'hang') return; // never answers; the client's timeout must fire
      if (fault.kind === 'status') return send(res, fault.status ?? 500, fault.body ?? { message: 'fault' }, fault.headers);
      if (fault.kind === 'mangle-after') mangle = fault;
      else dropAfter = true;
    }
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return send(res, 401, { message: 'Authentication required. Please supply a valid API Access Token' });

    const respond = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      if (dropAfter) return void req.socket.destroy();
      if (mangle) {
        res.writeHead(mangle.status ?? 200, { 'content-type': 'text/html', ...mangle.headers });
        return void res.end(typeof mangle.body === 'string' ? mangle.body : JSON.stringify(mangle.body ?? ''));
      }
      send(res, status, data, { 'ratelimit-remaining': '199', 'ratelimit-limit': '200', 'ratelimit-reset': '30', ...headers });
    };

    const p = url.pathname;
    const bp = this.buildsPath();
    let m: RegExpExecArray | null;
    if (p === '/v2/access-token') return respond(200, example('access_token__get_the_current_token'));
    // The organizations the token can see, and the pipelines of ours (the 404 diagnosis asks).
    if (p === '/v2/organizations' && method === 'GET') return this.page(url, [{ id: 'org-1', slug: this.org, name: this.org }], respond);
    if (p === `/v2/organizations/${this.org}` && method === 'GET') return respond(200, { id: 'org-1', slug: this.org, name: this.org });
    if (p === `/v2/organizations/${this.org}/pipelines` && method === 'GET')
      return this.page(
        url,
        [this.pipeline, ...this.otherPipelines].map((slug) => ({ ...example('pipelines__get_a_pipeline'), id: `pipeline-${slug}`, slug, name: slug })),
        respond,
      );
    if (p === `/v2/organizations/${this.org}/pipelines/${this.pipeline}` && method === 'GET')
      return respond(200, { ...example('pipelines__get_a_pipeline'), slug: this.pipeline, name: this.pipeline });
    if (!p.startsWith(`/v2/organizations/${this.org}/`)) return respond(404, { message: 'No organization found' });
    if (p === `/v2/organizations/${this.org}/agents` && method === 'GET') return this.page(url, this.agents, respond);
    if (!p.startsWith(`/v2/organizations/${this.org}/pipelines/${this.pipeline}/`)) return respond(404, { message: 'No pipeline found' });

    if (p === bp && method === 'POST') {
      const req = JSON.parse(body) as { branch: string; commit: string; message?: string; env?: object; meta_data?: Record<string, string> };
      if (!req.branch || !req.commit) return respond(422, { message: 'Validation failed', errors: ['commit and branch are required'] });
      const b = this.addBuild({ states: ['scheduled', 'running', 'passed'], branch: req.branch, meta_data: req.meta_data });
      b.commit = req.commit;
      b.message = req.message ?? null;
      b.env = req.env ?? {};
      return respond(201, b);
    }
    if (p === bp && method === 'GET') {
      let list = [...this.builds.values()].map((s) => s.build).sort((a, b) => b.number - a.number);
      if (this.ignoreFilters) return this.page(url, list, respond);
      const branch = url.searchParams.get('branch');
      if (branch) list = list.filter((b) => b.branch === branch);
      const states = url.searchParams.getAll('state[]');
      if (states.length) list = list.filter((b) => states.includes(b.state));
      for (const [k, v] of url.searchParams) {
        const mk = /^meta_data\[(.+)\]$/.exec(k);
        if (mk) list = list.filter((b) => b.meta_data?.[mk[1]!] === v);
      }
      return this.page(url, list, respond);
    }
    if ((m = new RegExp(`^${bp}/(\\d+)(/.*)?$`).exec(p))) {
      const s = this.builds.get(Number(m[1]));
      if (!s) return respond(404, { message: 'No build found' });
      const rest = m[2] ?? '';
      if (rest === '' && method === 'GET') {
        const next = s.states.shift();
        if (next) {
          s.build.state = next;
          if (['passed', 'failed', 'canceled'].includes(next))
            for (const j of s.build.jobs)
              if (j.state === 'running' || j.state === 'scheduled') j.state = next === 'passed' ? 'passed' : next === 'failed' ? 'failed' : 'canceled';
        }
        return respond(200, s.build);
      }
      if (rest === '/cancel' && method === 'PUT') {
        if (['passed', 'failed', 'canceled', 'skipped', 'not_run'].includes(s.build.state))
          return respond(422, { message: "Build can't be canceled because it's already finished" });
        s.build.state = 'canceled';
        s.states = [];
        return respond(200, s.build);
      }
      if (rest === '/rebuild' && method === 'PUT') {
        const nb = this.addBuild({ states: ['scheduled', 'running', 'passed'], branch: s.build.branch });
        nb.rebuilt_from = { id: s.build.id, number: s.build.number, url: s.build.url };
        return respond(200, nb);
      }
      if (rest === '/artifacts' && method === 'GET')
        return this.page(
          url,
          s.artifacts.map((a) => a.json),
          respond,
        );
      let jm: RegExpExecArray | null;
      if ((jm = /^\/jobs\/([^/]+)\/(log\.txt|log|retry|artifacts\/([^/]+)\/download)$/.exec(rest))) {
        const job = s.build.jobs.find((j: any) => j.id === jm![1]);
        if (!job) return respond(404, { message: 'No job found' });
        if (jm[2] === 'log.txt' && method === 'GET') {
          if (dropAfter) return void req.socket.destroy();
          res.writeHead(200, { 'content-type': 'text/plain' });
          return void res.end(this.logs.get(job.id) ?? '');
        }
        if (jm[2] === 'log' && method === 'GET') return respond(200, { ...example('jobs__get_a_job_s_log_output'), content: this.logs.get(job.id) ?? '' });
        if (jm[2] === 'retry' && method === 'PUT') {
          if (job.state !== 'failed' && job.state !== 'canceled' && job.state !== 'timed_out') return respond(422, { message: 'Job cannot be retried' });
          const nj = { ...job, id: randomUUID(), state: 'scheduled', retries_count: (job.retries_count ?? 0) + 1 };
          job.retried = true;
          job.retried_in_job_id = nj.id;
          s.build.jobs.push(nj);
          s.build.state = 'running';
          s.states = ['running', 'passed'];
          return respond(200, nj);
        }
        if (jm[3] && method === 'GET') {
          const a = s.artifacts.find((x) => x.json.id === jm![3]);
          if (!a) return respond(404, { message: 'No artifact found' });
          if (dropAfter) return void req.socket.destroy();
          res.writeHead(302, { location: `${this.storageOrigin}/blob/${a.json.id}?X-Amz-Signature=abc`, 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ url: `${this.storageOrigin}/blob/${a.json.id}?X-Amz-Signature=abc` }));
        }
      }
    }
    respond(404, { message: 'Not Found' });
  }

  // One page of a list with a Link header whose `next` entry is not first.
  private page(url: URL, all: unknown[], respond: (s: number, d: unknown, h?: Record<string, string>) => void): void {
    const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 30), this.perPageMax);
    const page = Number(url.searchParams.get('page') ?? 1);
    const items = all.slice((page - 1) * perPage, page * perPage);
    const last = Math.max(1, Math.ceil(all.length / perPage));
    const link = (n: number) => {
      const u = new URL(url);
      u.searchParams.set('page', String(n));
      return u.href;
    };
    const parts = [`<${link(1)}>; rel="first"`];
    if (page > 1) parts.push(`<${link(page - 1)}>; rel="prev"`);
    parts.push(`<${link(last)}>; rel="last"`);
    if (page < last) parts.push(`<${link(page + 1)}>; rel="next"`);
    respond(200, items, { link: parts.join(', ') });
  }
}

function send(res: ServerResponse, status: number, data: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(data));
}

function listen(server: Server, scheme = 'http'): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}
