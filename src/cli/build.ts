// `bkci build ...` and `bkci queue status`: flags to API calls, results to stdout. Wiring only;
// the requests and their meaning live in src/api.
import type { Command } from 'commander';
import { Option } from 'commander';
import type { BuildkiteApi } from '../api/builds.js';
import type { ApiFlags } from '../api/config.js';
import type { Build } from '../api/types.js';
import { CheckFailed, UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { formatDuration } from '../util/duration.js';
import { table, writeResult } from '../util/output.js';
import { registerSecret } from '../util/redact.js';
import { VERSION } from './version.js';

interface CommonFlags extends ApiFlags {
  json?: boolean;
  token?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

// Options every API command takes. `--token` exists only to refuse it with the reason.
function apiOptions(cmd: Command, json = true): Command {
  cmd
    .option('--org <slug>', 'organization slug (default: $BUILDKITE_ORGANIZATION_SLUG)')
    .option('--pipeline <slug>', 'pipeline slug (default: $BUILDKITE_PIPELINE_SLUG)')
    .option('--api-url <url>', 'REST API base URL (default: $BUILDKITE_API_URL or https://api.buildkite.com/v2)')
    .option('--token-file <file>', 'read the API token from FILE (default: $BUILDKITE_API_TOKEN)')
    .addOption(new Option('--token <token>').hideHelp());
  if (json) cmd.option('--json', 'print JSON');
  return cmd;
}

async function withApi<T>(flags: CommonFlags, io: Io, needPipeline: boolean, fn: (api: BuildkiteApi) => Promise<T>): Promise<T> {
  if (flags.token !== undefined) {
    registerSecret(flags.token);
    throw new UsageError(
      '--token is not accepted: a token on the command line is visible to every user in `ps` and kept in shell history',
      'export BUILDKITE_API_TOKEN or pass --token-file FILE (mode 0600)',
    );
  }
  const [{ loadApiConfig }, { ApiClient }, { BuildkiteApi }] = await Promise.all([
    import('../api/config.js'),
    import('../api/client.js'),
    import('../api/builds.js'),
  ]);
  const cfg = await loadApiConfig(flags, io, { pipeline: needPipeline });
  const timeout = io.env.BKCI_HTTP_TIMEOUT ? Number(io.env.BKCI_HTTP_TIMEOUT) * 1000 : undefined;
  const client = new ApiClient({
    apiUrl: cfg.apiUrl,
    token: cfg.token,
    io,
    userAgent: `bkci/${VERSION}${io.nodeVersion ? ` (node ${io.nodeVersion})` : ''}`,
    timeoutMs: timeout,
  });
  try {
    return await fn(new BuildkiteApi(client, cfg, io));
  } finally {
    await client.close();
  }
}

// A build number, or a build's web URL (which also names the org and pipeline).
export function parseBuildRef(arg: string, flags: CommonFlags): number {
  const url = /^https?:\/\/[^/]+\/([^/]+)\/([^/]+)\/builds\/(\d+)/.exec(arg);
  if (url) {
    flags.org ??= decodeURIComponent(url[1]!);
    flags.pipeline ??= decodeURIComponent(url[2]!);
    return Number(url[3]);
  }
  if (!/^\d+$/.test(arg) || Number(arg) < 1)
    throw new UsageError(`build ${JSON.stringify(arg)}: expected a build number or a build URL`, 'e.g. bkci build get 1234');
  return Number(arg);
}

// How long something ran (`12m`, `1h30m`), up to now while it runs; empty before it starts.
function span(start: string | null | undefined, end: string | null | undefined, io: Io): string {
  if (!start) return '';
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : io.now().getTime();
  return Number.isNaN(a) || Number.isNaN(b) ? '' : formatDuration(b - a);
}

// A timestamp: "3m ago" on a terminal, ISO 8601 when piped.
function when(ts: string | null | undefined, io: Io): string {
  if (!ts) return '';
  const t = Date.parse(ts);
  if (!io.stdoutIsTTY || Number.isNaN(t)) return ts;
  const ago = io.now().getTime() - t;
  return ago < 60_000 ? 'just now' : ago < 86_400_000 ? `${formatDuration(Math.floor(ago / 60_000) * 60_000)} ago` : `${Math.floor(ago / 86_400_000)}d ago`;
}

function printJson(io: Io, data: unknown): void {
  io.stdout.write(JSON.stringify(data, null, 2) + '\n');
}

function buildLine(b: Build): string {
  return `#${b.number} ${b.state}${b.web_url ? `  ${b.web_url}` : ''}\n`;
}

// A build on stdout: `#N state  url`, or the API's object with --json.
function printBuild(io: Io, b: Build, json: boolean | undefined): void {
  writeResult(io, json ? 'json' : 'text', b, buildLine);
}

interface WaitFlags extends CommonFlags {
  timeout?: string;
  failFast?: boolean;
}

async function waitAndReport(api: BuildkiteApi, n: number, io: Io, flags: WaitFlags): Promise<void> {
  const [{ waitForBuild }, { parseDuration }, { progressOf }] = await Promise.all([
    import('../api/wait.js'),
    import('../util/duration.js'),
    import('../api/builds.js'),
  ]);
  const timeoutMs = flags.timeout !== undefined ? parseDuration(flags.timeout, '--timeout') : undefined;
  const quiet = ['error', 'fatal', 'silent'].includes(io.log.level);
  const poll = io.env.BKCI_POLL_INTERVAL ? parseDuration(io.env.BKCI_POLL_INTERVAL, 'BKCI_POLL_INTERVAL') : undefined;
  const { build, verdict } = await waitForBuild(api, n, io, {
    timeoutMs,
    failFast: flags.failFast === true,
    spinner: io.stderrIsTTY && !quiet,
    firstIntervalMs: poll,
  });
  printBuild(io, build, flags.json);
  if (!verdict.ok) {
    const failed = progressOf(build).failed;
    throw new CheckFailed(
      `build #${build.number} ${verdict.reason}${failed.length ? `; failed jobs: ${failed.join(', ')}` : ''}`,
      `see the logs with \`bkci build logs ${build.number} --failed\``,
    );
  }
}

function waitOptions(cmd: Command): Command {
  return cmd
    .option('--timeout <duration>', 'give up waiting after DURATION (30s, 10m, 1h30m); the build keeps running')
    .option('--fail-fast', 'stop waiting as soon as the build is failing');
}

export function registerBuildCommands(program: Command, io: Io): void {
  const build = program.command('build').description('start, wait for and inspect builds through the REST API');

  waitOptions(
    apiOptions(
      build
        .command('submit')
        .description('start a build; with --wait, wait for it and exit with its result')
        .requiredOption('--branch <branch>', 'branch to build (owner:branch for a fork; default: $BUILDKITE_BRANCH)', io.env.BUILDKITE_BRANCH || undefined)
        .option('--commit <sha>', 'commit to build', 'HEAD')
        .option('--message <text>', 'build message')
        .option('--env <K=V>', 'build environment variable; repeatable', collect, [])
        .option('--meta-data <K=V>', 'build meta-data; repeatable', collect, [])
        .option('--wait', 'wait for the build to finish and exit with its result'),
    ),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  bkci build submit --branch main --wait --timeout 1h\n  bkci build submit --branch alice:fix-kernel --commit 3f2a9c1e... --env RUN_ALL=1 --json',
    )
    .action(async (flags: WaitFlags & { branch: string; commit: string; message?: string; env: string[]; metaData: string[]; wait?: boolean }) => {
      const { checkSubmit, parsePairs } = await import('../api/builds.js');
      checkSubmit(flags.branch, flags.commit);
      const env = parsePairs(flags.env, '--env');
      const metaData = parsePairs(flags.metaData, '--meta-data');
      await withApi(flags, io, true, async (api) => {
        const b = await api.createBuild({ branch: flags.branch, commit: flags.commit, message: flags.message ?? `bkci: ${flags.branch}`, env, metaData });
        io.log.info({ build: b.number, url: b.web_url }, `created build #${b.number}`);
        if (!flags.wait) {
          printBuild(io, b, flags.json);
          return;
        }
        await waitAndReport(api, b.number, io, flags);
      });
    });

  waitOptions(
    apiOptions(
      build.command('wait').description('wait for a build; exit 0 passed, 1 failed/canceled/not run/timed out').argument('<build>', 'build number or URL'),
    ),
  )
    .addHelpText('after', '\nA build stopped on a block step counts as finished: exit 0 when what ran passed.')
    .action(async (ref: string, flags: WaitFlags) => {
      const n = parseBuildRef(ref, flags);
      await withApi(flags, io, true, (api) => waitAndReport(api, n, io, flags));
    });

  apiOptions(build.command('get').description('show a build and its jobs').argument('<build>', 'build number or URL')).action(
    async (ref: string, flags: CommonFlags) => {
      const n = parseBuildRef(ref, flags);
      await withApi(flags, io, true, async (api) => {
        const b = await api.getBuild(n);
        if (flags.json) return printJson(io, b);
        const { scriptJobs, jobLabel } = await import('../api/builds.js');
        io.stdout.write(
          `build #${b.number} ${b.state}\nbranch  ${b.branch ?? ''}\ncommit  ${b.commit ?? ''}\nmessage ${(b.message ?? '').split('\n')[0]}\ntook    ${span(b.started_at, b.finished_at, io) || '-'}\nurl     ${b.web_url ?? ''}\n\n` +
            table(
              io,
              ['job', 'state', 'duration', 'agent', 'id'],
              scriptJobs(b).map((j) => [
                jobLabel(j),
                j.soft_failed && j.state === 'failed' ? 'soft_failed' : (j.state ?? ''),
                span(j.started_at, j.finished_at, io),
                j.agent?.name ?? '',
                j.id,
              ]),
            ),
        );
      });
    },
  );

  apiOptions(
    build
      .command('list')
      .description('list recent builds of the pipeline, newest first')
      .option('--branch <branch>', 'only this branch')
      .option('--state <state>', 'only these states (comma-separated: running,failed...)')
      .option('--limit <n>', 'at most N builds', '30'),
  ).action(async (flags: CommonFlags & { branch?: string; state?: string; limit: string }) => {
    const limit = Number(flags.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit ${flags.limit}: expected a positive whole number`);
    const state = flags.state
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    await withApi(flags, io, true, async (api) => {
      const out: Build[] = [];
      for await (const b of api.listBuilds({ branch: flags.branch, state })) {
        out.push(b);
        if (out.length >= limit) break;
      }
      if (flags.json) return printJson(io, out);
      io.stdout.write(
        table(
          io,
          ['number', 'state', 'branch', 'commit', 'created', 'duration', 'message'],
          out.map((b) => [
            String(b.number),
            b.state,
            b.branch ?? '',
            (b.commit ?? '').slice(0, 10),
            when(b.created_at, io),
            span(b.started_at, b.finished_at, io),
            (b.message ?? '').split('\n')[0]!.slice(0, 60),
          ]),
        ),
      );
    });
  });

  apiOptions(build.command('cancel').description('cancel a build').argument('<build>', 'build number or URL')).action(
    async (ref: string, flags: CommonFlags) => {
      const n = parseBuildRef(ref, flags);
      await withApi(flags, io, true, async (api) => {
        const b = await api.cancelBuild(n);
        printBuild(io, b, flags.json);
      });
    },
  );

  apiOptions(
    build
      .command('logs')
      .description('print job logs as raw text: every script job in order under a header, or one job')
      .argument('<build>', 'build number or URL')
      .option('--job <id>', 'only this job (id or step key), without a header')
      .option('--failed', 'only the failed jobs'),
  ).action(async (ref: string, flags: CommonFlags & { job?: string; failed?: boolean }) => {
    const n = parseBuildRef(ref, flags);
    await withApi(flags, io, true, async (api) => {
      const { jobLabel } = await import('../api/builds.js');
      if (flags.json) {
        const all = [];
        for await (const { job, log } of api.jobLogs(n, flags)) all.push({ job: job.id, name: jobLabel(job), state: job.state ?? null, log });
        return printJson(io, all);
      }
      // Each log is printed as soon as it has arrived.
      let i = 0;
      for await (const { job, log } of api.jobLogs(n, flags)) {
        if (!flags.job) io.stdout.write(`${i++ > 0 ? '\n' : ''}=== ${jobLabel(job)} (${job.state ?? 'unknown'}, job ${job.id}) ===\n`);
        io.stdout.write(log.endsWith('\n') || log === '' ? log : log + '\n');
      }
    });
  });

  apiOptions(
    build
      .command('artifacts')
      .description('list a build’s artifacts, or download them (sha1-checked, paths kept)')
      .argument('<build>', 'build number or URL')
      .option('--glob <glob>', 'only artifacts whose path matches (comma-separated globs, ** across directories)')
      .option('--download <dir>', 'download into DIR'),
  ).action(async (ref: string, flags: CommonFlags & { glob?: string; download?: string }) => {
    const n = parseBuildRef(ref, flags);
    await withApi(flags, io, true, async (api) => {
      const { selectArtifacts, downloadArtifact } = await import('../api/artifacts.js');
      const { formatBytes } = await import('../util/bytes.js');
      const { resolve } = await import('node:path');
      const chosen = selectArtifacts(await api.artifacts(n), flags.glob);
      if (flags.glob && chosen.length === 0) io.log.warn({ glob: flags.glob }, 'no artifact matches the glob');
      if (!flags.download) {
        if (flags.json) return printJson(io, chosen);
        io.stdout.write(
          table(
            io,
            ['path', 'size', 'state', 'job', 'id'],
            chosen.map((a) => [a.path, a.file_size != null ? formatBytes(a.file_size) : '', a.state ?? '', a.job_id ?? '', a.id ?? '']),
          ),
        );
        return;
      }
      const dir = resolve(io.cwd, flags.download);
      const done = [];
      for (const a of chosen) {
        const d = await downloadArtifact(api.client, a, dir);
        io.log.info({ path: a.path, bytes: d.bytes }, d.skipped ? `${a.path} is already there (sha1 matches)` : `downloaded ${a.path}`);
        done.push(d);
      }
      if (flags.json) printJson(io, done);
      else io.stdout.write(done.map((d) => `${d.file}\n`).join(''));
    });
  });

  waitOptions(
    apiOptions(
      build
        .command('retry')
        .description('retry the failed jobs of a build in place (PUT .../jobs/{id}/retry); --rebuild starts a new build instead')
        .argument('<build>', 'build number or URL')
        .option('--failed', 'retry the failed jobs (the default, accepted for clarity)')
        .option('--rebuild', 'rebuild the whole build as a new build (PUT .../rebuild)')
        .option('--wait', 'then wait for the build and exit with its result'),
    ),
  ).action(async (ref: string, flags: WaitFlags & { failed?: boolean; rebuild?: boolean; wait?: boolean }) => {
    const n = parseBuildRef(ref, flags);
    if (flags.failed && flags.rebuild)
      throw new UsageError('--failed and --rebuild cannot be used together', 'retry the failed jobs in place, or rebuild everything as a new build');
    await withApi(flags, io, true, async (api) => {
      let target = n;
      if (!flags.rebuild) {
        const retried = await api.retryFailedJobs(n);
        if (!flags.wait) {
          if (flags.json) printJson(io, { build: n, retried });
          else io.stdout.write(retried.map((r) => `${r.name}\t${r.retry}\n`).join(''));
          return;
        }
      } else {
        const b = await api.rebuild(n);
        target = b.number;
        io.log.info({ from: n, build: b.number }, `rebuilt #${n} as #${b.number}`);
        if (!flags.wait) {
          printBuild(io, b, flags.json);
          return;
        }
      }
      await waitAndReport(api, target, io, flags);
    });
  });

  apiOptions(
    build
      .command('summary')
      .description('the table a nightly run posts: job, status, agent (queue), minutes, links')
      .argument('<build>', 'build number or URL')
      .addOption(new Option('--format <format>', 'markdown or json').choices(['markdown', 'json']).default('markdown'))
      .option('--annotate', 'also post it with `buildkite-agent annotate` (inside a build)'),
    false,
  )
    .option('--json', 'same as --format json')
    .action(async (ref: string, flags: CommonFlags & { format: 'markdown' | 'json'; annotate?: boolean }) => {
      const n = parseBuildRef(ref, flags);
      if (flags.annotate && !io.env.BUILDKITE_JOB_ID)
        throw new UsageError(
          '--annotate works only inside a Buildkite job (BUILDKITE_JOB_ID is not set)',
          'run it as a step of a build, or drop --annotate and post the markdown yourself',
        );
      await withApi(flags, io, true, async (api) => {
        const { summaryRows, summaryMarkdown } = await import('../api/builds.js');
        const b = await api.getBuild(n);
        const rows = summaryRows(b, await api.artifacts(n), io.now());
        const md = summaryMarkdown(b, rows);
        if (flags.json || flags.format === 'json') printJson(io, { build: b.number, state: b.state, url: b.web_url ?? null, jobs: rows });
        else io.stdout.write(md);
        if (flags.annotate) {
          const { annotate } = await import('../api/annotate.js');
          await annotate(md, b.state === 'passed' ? 'success' : b.state === 'failed' || b.state === 'failing' ? 'error' : 'info', io);
        }
      });
    });

  const queue = program.command('queue').description('queue capacity from the agents API');
  apiOptions(
    queue
      .command('status')
      .description('connected agents of a queue: total, idle, busy, and what each runs')
      .argument('<queue>', 'queue name (the queue=NAME agent tag)'),
  ).action(async (name: string, flags: CommonFlags) => {
    await withApi(flags, io, false, async (api) => {
      const { listAgents, queueStatus } = await import('../api/agents.js');
      const { agents, skipped } = await listAgents(api.client, api.cfg.org);
      for (const why of skipped) io.log.warn({ queue: name }, `left out of the count: ${why}`);
      const s = queueStatus(agents, name);
      if (flags.json) return printJson(io, s);
      io.stdout.write(
        `queue ${s.queue}: ${s.total} agents, ${s.idle} idle, ${s.busy} busy\n` +
          (s.agents.length
            ? table(
                io,
                ['agent', 'state', 'gpu', 'job'],
                s.agents.map((a) => [a.name, a.busy ? 'busy' : 'idle', a.gpu ?? '', a.job ?? '']),
              )
            : ''),
      );
    });
  });
}
