// Builds, jobs, logs and artifacts of one pipeline. The pure parts (what a build's state means for
// waiting, which jobs to retry or print, the summary rows) are separate functions; BuildkiteApi
// holds the requests.
import { randomUUID } from 'node:crypto';
import { CheckFailed, UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { AmbiguousRequestError, ApiError, type ApiClient } from './client.js';
import type { ApiConfig } from './config.js';
import { ArtifactSchema, BuildSchema, JobSchema, parseAnswer, parseListItem, type Artifact, type Build, type Job } from './types.js';

// The meta-data key bkci adds to every build it creates, so an ambiguous create can be looked up.
export const SUBMIT_MARKER = 'bkci-submit-id';

export interface CreateBuildRequest {
  branch: string;
  commit: string;
  message: string;
  env: Record<string, string>;
  metaData: Record<string, string>;
}

const seg = encodeURIComponent;

export class BuildkiteApi {
  constructor(
    readonly client: ApiClient,
    readonly cfg: ApiConfig,
    private readonly io: Io,
  ) {}

  get pipelineRef(): string {
    return `${this.cfg.org}/${this.pipeline}`;
  }

  private get pipeline(): string {
    if (!this.cfg.pipeline) throw new UsageError('no pipeline: pass --pipeline SLUG or set BUILDKITE_PIPELINE_SLUG');
    return this.cfg.pipeline;
  }

  private buildsPath(): string {
    return `organizations/${seg(this.cfg.org)}/pipelines/${seg(this.pipeline)}/builds`;
  }

  buildPath(n: number): string {
    // Never `builds/1e+23`: a number that is not a checked build number is a bug upstream.
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`build ${String(n)}: not a build number`);
    return `${this.buildsPath()}/${n}`;
  }

  // `deadline` (epoch ms on the Io clock): the client's retries stop there (`build wait --timeout`).
  async getBuild(n: number, opts: { deadline?: number } = {}): Promise<Build> {
    const data = await this.diagnosed(
      this.client.json<unknown>('GET', this.buildPath(n), {
        scope: 'read_builds',
        what: `build ${n} of ${this.pipelineRef}`,
        deadline: opts.deadline,
      }),
    );
    return parseAnswer(BuildSchema, data, `build ${n}`);
  }

  // A 404 about a pipeline's builds may mean the build, the pipeline or the organization does not
  // exist. Which one is asked (the organization, then the pipeline), and a wrong slug is named with
  // the closest one the token can see: `did you mean "gpu-tests"?`. When the question cannot be
  // answered (no read_pipelines scope, the API failing), the original error stands.
  private async diagnosed<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw await this.explainNotFound(err);
    }
  }

  private async explainNotFound(err: unknown): Promise<unknown> {
    // (An API URL without /v2 gets a 404 for everything: its own hint says so.)
    if (!(err instanceof ApiError) || err.status !== 404 || err.exitCode !== 2 || !/\/v2\/$/.test(this.client.base.pathname)) return err;
    const { org } = this.cfg;
    const pipeline = this.cfg.pipeline;
    const said = err.apiMessage ? `: ${err.apiMessage}` : '';
    const exists = async (path: string): Promise<boolean | undefined> => {
      try {
        await this.client.json<unknown>('GET', path, { scope: 'read_pipelines' });
        return true;
      } catch (e) {
        return e instanceof ApiError && e.status === 404 ? false : undefined;
      }
    };
    const slugs = async (path: string): Promise<string[]> => {
      const out: string[] = [];
      try {
        for await (const item of this.client.paginate<unknown>(path, { scope: 'read_pipelines' })) {
          const slug = (item as { slug?: unknown } | null)?.slug;
          if (typeof slug === 'string') out.push(slug);
          if (out.length >= 2000) break;
        }
      } catch {
        // The suggestion is a help, not a requirement.
      }
      return out;
    };
    const orgKnown = await exists(`organizations/${seg(org)}`);
    if (orgKnown === false) {
      const hint = suggestSlug(org, await slugs('organizations'), '--org or BUILDKITE_ORGANIZATION_SLUG');
      return new ApiError(`not found: organization ${JSON.stringify(org)} (404)${said}`, 404, err.apiMessage, hint);
    }
    if (orgKnown !== true || !pipeline) return err;
    const pipelineKnown = await exists(`organizations/${seg(org)}/pipelines/${seg(pipeline)}`);
    if (pipelineKnown !== false) return err;
    const hint = suggestSlug(pipeline, await slugs(`organizations/${seg(org)}/pipelines`), '--pipeline or BUILDKITE_PIPELINE_SLUG');
    return new ApiError(`not found: pipeline ${JSON.stringify(pipeline)} in organization ${org} (404)${said}`, 404, err.apiMessage, hint);
  }

  async *listBuilds(filter: { branch?: string; state?: string[]; metaData?: Record<string, string>; createdFrom?: Date }): AsyncGenerator<Build> {
    const query: Record<string, string | string[]> = {};
    if (filter.branch) query.branch = filter.branch;
    if (filter.createdFrom) query.created_from = filter.createdFrom.toISOString();
    if (filter.state?.length) query['state[]'] = filter.state;
    for (const [k, v] of Object.entries(filter.metaData ?? {})) query[`meta_data[${k}]`] = v;
    const pages = this.client.paginate<unknown>(this.buildsPath(), { query, scope: 'read_builds', what: `pipeline ${this.pipelineRef}` });
    for await (const b of this.diagnosedList(pages)) {
      const build = parseListItem(BuildSchema, b, 'a build in the list', (why) =>
        this.io.log.warn({ pipeline: this.pipelineRef }, `left out of the list: ${why}`),
      );
      if (build) yield build;
    }
  }

  private async *diagnosedList<T>(items: AsyncGenerator<T>): AsyncGenerator<T> {
    try {
      yield* items;
    } catch (err) {
      throw await this.explainNotFound(err);
    }
  }

  // Creates a build exactly once. The body carries a fresh marker in meta_data; when the create
  // fails ambiguously (connection lost, timeout, 5xx), the builds carrying the marker are looked
  // up (twice, a few seconds apart) before one more create is sent.
  async createBuild(req: CreateBuildRequest): Promise<Build> {
    const marker = randomUUID();
    const body = {
      branch: req.branch,
      commit: req.commit,
      message: req.message,
      env: req.env,
      meta_data: { ...req.metaData, [SUBMIT_MARKER]: marker },
    };
    const opts = { body, scope: 'write_builds', what: `pipeline ${this.pipelineRef}` };
    // A build of ours cannot be older than this (10 minutes of slack for clock skew).
    const since = new Date(this.io.now().getTime() - 10 * 60_000);
    for (let attempt = 1; ; attempt++) {
      try {
        const data = await this.diagnosed(this.client.json<unknown>('POST', this.buildsPath(), opts));
        return parseAnswer(BuildSchema, data, 'the created build');
      } catch (err) {
        // A success status with an answer that is not a build (empty, an HTML page, the wrong
        // shape): the create was most likely processed. Look for it rather than let a re-run
        // make a second one; never send it again on that basis.
        if (err instanceof ApiError && (err.status === 0 || (err.status >= 200 && err.status < 300))) {
          this.io.log.warn({ marker }, `${err.message}; looking for the build it may have created`);
          const found = await this.findByMarker(marker, req.branch, since).catch(() => undefined);
          if (found) {
            this.io.log.info({ build: found.number }, 'the build was created; using it');
            return found;
          }
          throw new ApiError(
            `${err.message}; no build carrying this submission's marker was found`,
            err.status,
            err.apiMessage,
            `the build may still have been created: check with \`bkci build list --branch ${shellArg(req.branch)}\` before submitting again`,
          );
        }
        if (!(err instanceof AmbiguousRequestError) || attempt >= 3) throw err;
        this.io.log.warn({ marker }, `${err.message}; looking for the build before trying again`);
        for (let look = 0; look < 2; look++) {
          if (look > 0) await this.io.sleep(3000);
          const found = await this.findByMarker(marker, req.branch, since);
          if (found) {
            this.io.log.info({ build: found.number }, 'the build was created; not creating another');
            return found;
          }
        }
        this.io.log.warn({ marker }, 'no build carries the marker: the create was not processed; sending it again');
      }
    }
  }

  private async findByMarker(marker: string, branch: string, since: Date): Promise<Build | undefined> {
    for await (const b of this.listBuilds({ branch, metaData: { [SUBMIT_MARKER]: marker }, createdFrom: since })) {
      // Servers that ignore the meta_data filter still return the marker in each build.
      if (b.meta_data?.[SUBMIT_MARKER] === marker) return b;
      // Newest first: past the submission's time nothing can be ours (servers that ignore created_from).
      if (b.created_at && Date.parse(b.created_at) < since.getTime()) break;
    }
    return undefined;
  }

  async cancelBuild(n: number): Promise<Build> {
    const data = await this.client.json<unknown>('PUT', `${this.buildPath(n)}/cancel`, { scope: 'write_builds', what: `build ${n} of ${this.pipelineRef}` });
    // A server that answers the cancel with no body (204) still canceled it: read the build.
    if (data === undefined) return this.getBuild(n);
    return parseAnswer(BuildSchema, data, `the canceled build ${n}`);
  }

  async rebuild(n: number): Promise<Build> {
    const data = await this.client.json<unknown>('PUT', `${this.buildPath(n)}/rebuild`, { scope: 'write_builds', what: `build ${n} of ${this.pipelineRef}` });
    return parseAnswer(BuildSchema, data, `the rebuild of build ${n}`);
  }

  async retryJob(n: number, jobId: string): Promise<Job> {
    const data = await this.client.json<unknown>('PUT', `${this.buildPath(n)}/jobs/${seg(jobId)}/retry`, {
      scope: 'write_builds',
      what: `job ${jobId} of build ${n}`,
    });
    return parseAnswer(JobSchema, data, `the retried job ${jobId}`);
  }

  // Retries each failed script job of build n in place; returns old and new job ids.
  async retryFailedJobs(n: number): Promise<{ job: string; name: string; retry: string }[]> {
    const b = await this.getBuild(n);
    const failed = scriptJobs(b).filter(isFailedJob);
    if (failed.length === 0) throw new CheckFailed(`build #${n} has no failed jobs to retry (state ${b.state})`);
    const retried = [];
    for (const j of failed) {
      const nj = await this.retryJob(n, j.id);
      this.io.log.info({ job: jobLabel(j), newJob: nj.id }, `retried ${jobLabel(j)}`);
      retried.push({ job: j.id, name: jobLabel(j), retry: nj.id });
    }
    return retried;
  }

  // The jobs whose logs `build logs` prints (see jobsForLogs), in build order, each with a
  // function that streams its log to `write` as it arrives (constant memory whatever its size).
  // `terminal`: the logs go to a terminal, so escape sequences other than colours (and those too
  // unless `color`) are dropped (see terminal.ts); otherwise they pass byte for byte.
  async logsOf(
    n: number,
    pick: { job?: string; failed?: boolean; terminal?: { color: boolean } },
  ): Promise<{ job: Job; pipe: (write: (text: string) => void | Promise<void>) => Promise<number> }[]> {
    const jobs = jobsForLogs(await this.getBuild(n), pick);
    if (jobs.length === 0) this.io.log.warn({ build: n }, pick.failed ? 'no failed jobs in this build' : 'this build has no script jobs');
    const { terminalFilter } = pick.terminal ? await import('../util/terminal.js') : { terminalFilter: undefined };
    return jobs.map((job) => ({
      job,
      pipe: async (write: (text: string) => void | Promise<void>) => {
        if (!terminalFilter) return this.streamJobLog(n, job.id, write);
        const keep = terminalFilter(pick.terminal!.color);
        const bytes = await this.streamJobLog(n, job.id, async (text) => {
          const shown = keep(text);
          if (shown) await write(shown);
        });
        keep('', true);
        return bytes;
      },
    }));
  }

  // One job's log streamed to `write`; returns its size in bytes. The build was just read and
  // names the job, so a 404 here is a job without a log (it never ran, or the log has expired):
  // an empty log and a warning, not the end of every other job's log.
  async streamJobLog(n: number, jobId: string, write: (text: string) => void | Promise<void>): Promise<number> {
    try {
      return await this.client.streamText(`${this.buildPath(n)}/jobs/${seg(jobId)}/log.txt`, write, {
        scope: 'read_build_logs',
        what: `the log of job ${jobId} in build ${n}`,
      });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404 && err.exitCode === 2)) throw err;
      this.io.log.warn({ build: n, job: jobId }, `job ${jobId} of build ${n} has no log (404${err.apiMessage ? `: ${err.apiMessage}` : ''})`);
      return 0;
    }
  }

  async artifacts(n: number): Promise<Artifact[]> {
    const out: Artifact[] = [];
    for await (const a of this.client.paginate<unknown>(`${this.buildPath(n)}/artifacts`, { scope: 'read_artifacts', what: `the artifacts of build ${n}` })) {
      out.push(parseAnswer(ArtifactSchema, a, 'an artifact'));
    }
    return out;
  }
}

// ---- pure helpers ----------------------------------------------------------------------------

// The hint for a slug that does not exist: the closest of `known` (by edit distance, or one
// containing the other), else a few of them, else where to look.
export function suggestSlug(wrong: string, known: string[], where: string): string {
  const w = wrong.toLowerCase();
  const scored = known
    .map((k) => ({ k, d: editDistance(w, k.toLowerCase()) }))
    .filter(({ k, d }) => d <= Math.max(2, Math.floor(wrong.length / 3)) || k.toLowerCase().includes(w) || w.includes(k.toLowerCase()))
    .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k));
  if (scored.length) return `did you mean ${JSON.stringify(scored[0]!.k)}? (set ${where})`;
  if (known.length)
    return `the token can see ${known.length === 1 ? '' : `${known.length}, e.g. `}${known
      .slice(0, 5)
      .map((k) => JSON.stringify(k))
      .join(', ')} (set ${where})`;
  return `check the slug (${where}): it is the part of the URL after buildkite.com/`;
}

export function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 64) return Math.abs(a.length - b.length);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

export const TERMINAL_FAILED = new Set(['failed', 'canceled', 'not_run', 'skipped']);
// States of a build that is still going (blocked is judged on its own).
const IN_PROGRESS = new Set(['creating', 'scheduled', 'running', 'failing', 'canceling', 'blocked']);
const JOB_DONE = new Set(['passed', 'failed', 'canceled', 'timed_out', 'skipped', 'broken', 'expired', 'not_run', 'finished']);
const JOB_FAILED = new Set(['failed', 'timed_out', 'canceled', 'expired']);

export interface Verdict {
  done: boolean;
  ok: boolean;
  reason: string;
}

// What a build's state means for someone waiting on it.
export function judgeBuild(b: Build, failFast: boolean): Verdict {
  if (b.state === 'passed') return { done: true, ok: true, reason: 'passed' };
  if (TERMINAL_FAILED.has(b.state)) return { done: true, ok: false, reason: b.state };
  if (failFast && (b.state === 'failing' || b.state === 'canceling')) return { done: true, ok: false, reason: `${b.state} (--fail-fast)` };
  if (b.state === 'blocked') {
    const bs = b.blocked_state ?? blockedStateFromJobs(b);
    if (bs === 'passed') return { done: true, ok: true, reason: 'blocked on a block step; everything before it passed' };
    if (bs === 'failed') return { done: true, ok: false, reason: 'blocked on a block step after a failure' };
  }
  // A state bkci does not know, on a build that says it has finished: not a pass, and not worth
  // waiting on forever.
  if (!IN_PROGRESS.has(b.state) && b.finished_at) return { done: true, ok: false, reason: `finished in state ${b.state}` };
  return { done: false, ok: false, reason: b.state };
}

function blockedStateFromJobs(b: Build): string {
  const jobs = scriptJobs(b);
  if (jobs.some((j) => !JOB_DONE.has(j.state ?? ''))) return 'running';
  return jobs.some(isFailedJob) ? 'failed' : 'passed';
}

// The current attempt of every script job (retried attempts dropped).
export function scriptJobs(b: Build): Job[] {
  return (b.jobs ?? []).filter((j) => j.type === 'script' && j.retried !== true);
}

export function isFailedJob(j: Job): boolean {
  return JOB_FAILED.has(j.state ?? '') && j.soft_failed !== true;
}

export interface Progress {
  done: number;
  total: number;
  running: string[];
  failed: string[];
}

export function progressOf(b: Build): Progress {
  const jobs = scriptJobs(b);
  return {
    done: jobs.filter((j) => JOB_DONE.has(j.state ?? '')).length,
    total: jobs.length,
    running: jobs.filter((j) => j.state === 'running' || j.state === 'assigned' || j.state === 'accepted').map(jobLabel),
    failed: jobs.filter(isFailedJob).map(jobLabel),
  };
}

export function jobLabel(j: Job): string {
  return j.name || j.step_key || j.id;
}

export interface SummaryRow {
  stage: string;
  job: string;
  status: string;
  agent: string;
  queue: string;
  minutes: number | null;
  log: string;
  artifacts: number;
}

// One row per script job, in build order: the table a nightly run posts.
export function summaryRows(b: Build, artifacts: Artifact[], now: Date): SummaryRow[] {
  const counts = new Map<string, number>();
  for (const a of artifacts) if (a.job_id) counts.set(a.job_id, (counts.get(a.job_id) ?? 0) + 1);
  return scriptJobs(b).map((j) => {
    const started = j.started_at ? Date.parse(j.started_at) : NaN;
    const finished = j.finished_at ? Date.parse(j.finished_at) : now.getTime();
    const queue = (j.agent_query_rules ?? []).find((r) => r.startsWith('queue='))?.slice('queue='.length) ?? '';
    return {
      stage: j.group_key ?? '',
      job: jobLabel(j),
      status: j.soft_failed && j.state === 'failed' ? 'soft_failed' : (j.state ?? 'unknown'),
      agent: j.agent?.name ?? '',
      queue,
      minutes: Number.isNaN(started) ? null : Math.round((finished - started) / 6000) / 10,
      log: j.web_url ?? '',
      artifacts: counts.get(j.id) ?? 0,
    };
  });
}

const STATUS_ICON: Record<string, string> = { passed: '✅', failed: '❌', timed_out: '⏱️', canceled: '🚫', soft_failed: '⚠️', running: '🏃', scheduled: '⏳' };

export function summaryMarkdown(b: Build, rows: SummaryRow[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    `### Build #${b.number}: ${b.state}${b.web_url ? ` ([open](${b.web_url}))` : ''}`,
    '',
    `Branch \`${b.branch ?? ''}\`, commit \`${(b.commit ?? '').slice(0, 12)}\``,
    '',
    '| Stage | Job | Status | Agent (queue) | Minutes | Links |',
    '|---|---|---|---|---:|---|',
  ];
  for (const r of rows) {
    const agent = r.agent ? `${r.agent}${r.queue ? ` (${r.queue})` : ''}` : r.queue ? `(${r.queue})` : '';
    const links = r.log ? `[log](${r.log})${r.artifacts ? ` · [${r.artifacts} artifact${r.artifacts === 1 ? '' : 's'}](${r.log})` : ''}` : '';
    lines.push(`| ${cell(r.stage)} | ${cell(r.job)} | ${STATUS_ICON[r.status] ?? ''} ${r.status} | ${cell(agent)} | ${r.minutes ?? ''} | ${links} |`);
  }
  return lines.join('\n') + '\n';
}

// Jobs whose logs `build logs` prints: one job by id, the failed ones, or every script job.
export function jobsForLogs(b: Build, opts: { job?: string; failed?: boolean }): Job[] {
  const jobs = scriptJobs(b);
  if (opts.job) {
    const j = (b.jobs ?? []).find((x) => x.id === opts.job || x.step_key === opts.job);
    if (!j)
      throw new UsageError(
        `--job ${opts.job}: build ${b.number} has no job with that id or step key`,
        `its jobs: ${jobs.map((x) => `${x.id} (${jobLabel(x)})`).join(', ') || 'none'}`,
      );
    return [j];
  }
  return opts.failed ? jobs.filter(isFailedJob) : jobs;
}

// A value as one word of a shell command shown in a hint: bare when it is plain, single-quoted
// otherwise, and as $'...' with escapes when it holds a control or bidirectional-override
// character (a branch named with an escape sequence must not drive the terminal it is shown on).
export function shellArg(s: string): string {
  if (/^[\w./:@%+=,-]+$/.test(s)) return s;
  const unsafe = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
  if (!unsafe.test(s)) return `'${s.replace(/'/g, `'\\''`)}'`;
  const body = [...s]
    .map((c) => {
      if (c === "'" || c === '\\') return `\\${c}`;
      if (!unsafe.test(c)) return c;
      const n = c.codePointAt(0)!;
      return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
    })
    .join('');
  return `$'${body}'`;
}

// A `K=V` pair from a repeatable flag.
export function parsePairs(values: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag} ${JSON.stringify(v)}: expected KEY=VALUE`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

// Refuses what Buildkite would refuse or misread before any request is sent.
export function checkSubmit(branch: string, commit: string): void {
  if (!branch.trim()) throw new UsageError('--branch is empty');
  if (branch.includes(':') && commit.toUpperCase() === 'HEAD') {
    throw new UsageError(
      `--branch ${branch} is a fork branch (owner:branch); Buildkite cannot build HEAD of a fork`,
      'pass --commit with the full commit SHA of the fork branch',
    );
  }
}
