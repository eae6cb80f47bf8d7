// The edge of `bkci pipeline upload`: validate the input as `pipeline validate` does, plan the
// batches (plan.ts is pure), then either write them to a directory (--dry-run) or hand each one to
// `buildkite-agent pipeline upload` on stdin, in order, stopping at the first that fails.
import { join, resolve } from 'node:path';
import { CheckFailed, InputError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { loadPipelineYaml, positionOf } from '../yaml-load.js';
import type { Finding } from '../validate.js';
import { DEFAULT_MAX_JOBS, PlanError, planUpload, type UploadPlan } from './batch.js';
import { toYaml } from './serialize.js';

// Why a --dry-run directory could not be made or written, in words.
const DRY_RUN_WHY: Record<string, string> = {
  ENOTDIR: 'it (or a part of its path) is a file, not a directory',
  EEXIST: 'it exists and is not a directory',
  EISDIR: 'a directory is in the way',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ENOENT: 'the system does not allow files there',
  ENAMETOOLONG: 'the name is too long',
};

export interface UploadOptions {
  maxJobs: number;
  // Write batch-001.yml ... here and upload nothing.
  dryRunDir?: string;
  // The agent binary (a name looked up on PATH, or a path) and extra arguments for `pipeline upload`.
  agentBin: string;
  agentArgs: string[];
}

export interface BatchText {
  index: number;
  jobs: number;
  document: number;
  steps: number;
  text: string;
}

export interface UploadReport {
  file: string;
  totalJobs: number;
  split: boolean;
  generatedKeys: string[];
  batches: { batch: number; jobs: number; document: number; steps: number; file?: string }[];
  uploaded: number;
  dryRun: boolean;
}

// The limit: --max-jobs, else BKCI_MAX_UPLOAD_JOBS, else 500. A bad value is a usage error naming its source.
export function maxJobsFrom(flag: string | undefined, env: Io['env']): number {
  const [raw, from] =
    flag !== undefined ? [flag, '--max-jobs'] : env.BKCI_MAX_UPLOAD_JOBS ? [env.BKCI_MAX_UPLOAD_JOBS, 'BKCI_MAX_UPLOAD_JOBS'] : [undefined, ''];
  if (raw === undefined) return DEFAULT_MAX_JOBS;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1)
    throw new InputError(
      `${from} ${JSON.stringify(raw)}: expected a whole number of jobs of at least 1`,
      'the default is 500 (Buildkite raises it per organization on request)',
    );
  return Number(raw);
}

export interface Prepared {
  findings: Finding[];
  valid: boolean;
  plan?: UploadPlan;
  batches: BatchText[];
}

// Validates and plans. Invalid input returns its findings (the caller prints them); a plan that
// cannot be made (a group above the limit, a dependency cycle) is CheckFailed naming file:line:col.
export async function prepareUpload(text: string, name: string, maxJobs: number): Promise<Prepared> {
  const { validatePipelineText } = await import('../validate.js');
  const v = await validatePipelineText(text, { maxJobs: null });
  if (!v.valid) return { findings: v.findings, valid: false, batches: [] };
  let plan: UploadPlan;
  try {
    plan = planUpload(v.documents, { maxJobs });
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    const loaded = loadPipelineYaml(text);
    const d = loaded.docs[err.doc];
    const at = d ? positionOf(d.doc, loaded.lineCounter, err.path) : { line: 1, col: 1 };
    throw new CheckFailed(`${name}:${at.line}:${at.col}: ${err.message}`, err.hint);
  }
  const batches: BatchText[] = plan.split
    ? plan.batches.map((b, i) => ({ index: i + 1, jobs: b.jobs, document: b.document, steps: b.items.length, text: toYaml(b.pipeline) }))
    : // Everything fits: the input goes to the agent exactly as it is.
      [{ index: 1, jobs: plan.totalJobs, document: 0, steps: plan.batches.reduce((n, b) => n + b.items.length, 0), text }];
  return { findings: v.findings, valid: true, plan, batches };
}

const jobsText = (n: number): string => `${n} job${n === 1 ? '' : 's'}`;

export const batchFileName = (i: number): string => `batch-${String(i).padStart(3, '0')}.yml`;

// Runs the plan: dry-run files, or one agent upload per batch.
export async function runUpload(prepared: Prepared, name: string, opts: UploadOptions, io: Io): Promise<UploadReport> {
  const { plan, batches } = prepared;
  if (!plan) throw new Error('runUpload: no plan');
  const n = batches.length;
  const report: UploadReport = {
    file: name,
    totalJobs: plan.totalJobs,
    split: plan.split,
    generatedKeys: plan.generatedKeys,
    batches: batches.map((b) => ({ batch: b.index, jobs: b.jobs, document: b.document + 1, steps: b.steps })),
    uploaded: 0,
    dryRun: opts.dryRunDir !== undefined,
  };
  if (plan.generatedKeys.length)
    io.log.info({ keys: plan.generatedKeys.length }, 'wait/block steps made explicit as depends_on across batches; keys added to steps that had none');
  if (opts.dryRunDir !== undefined) {
    const dir = resolve(io.cwd, opts.dryRunDir);
    const [{ writeIfChanged }, { readdir, unlink }, { makeDirs }] = await Promise.all([
      import('../../util/atomic-write.js'),
      import('node:fs/promises'),
      import('../../util/mkdirs.js'),
    ]);
    const refused = (doing: string) => (err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (!code) throw err;
      throw new InputError(`--dry-run ${opts.dryRunDir}: cannot ${doing}: ${DRY_RUN_WHY[code] ?? code}`, 'pass a directory bkci can create and write to');
    };
    await makeDirs(dir).catch(refused('create the directory'));
    for (const b of batches) {
      const file = join(dir, batchFileName(b.index));
      await writeIfChanged(file, b.text, 0o644).catch(refused(`write ${batchFileName(b.index)}`));
      report.batches[b.index - 1]!.file = join(opts.dryRunDir, batchFileName(b.index));
      io.log.info(`batch ${b.index}/${n}: ${jobsText(b.jobs)} -> ${report.batches[b.index - 1]!.file}`);
    }
    // A batch file left by an earlier run with more batches would be uploaded by a glob.
    for (const f of await readdir(dir).catch(refused('list the directory'))) {
      const m = /^batch-(\d{3,})\.yml$/.exec(f);
      if (m && Number(m[1]) > n) await unlink(join(dir, f)).catch(refused(`remove the old ${f}`));
    }
    return report;
  }
  const { execa } = await import('execa');
  for (const b of batches) {
    io.log.info(`batch ${b.index}/${n}: ${jobsText(b.jobs)}`);
    // --replace (or BUILDKITE_PIPELINE_REPLACE) replaces the rest of the build's pipeline: on a
    // later batch it would remove the batches before it, so only the first batch carries it.
    const env = { ...io.env };
    let args = opts.agentArgs;
    if (b.index > 1) {
      delete env.BUILDKITE_PIPELINE_REPLACE;
      args = args.filter((a) => !/^--replace(=.*)?$/.test(a));
    }
    const r = await execa(opts.agentBin, ['pipeline', 'upload', ...args], {
      input: b.text,
      env,
      extendEnv: false,
      cwd: io.cwd,
      reject: false,
      all: true,
      stripFinalNewline: true,
    });
    if ((r as { code?: string }).code === 'ENOENT' && b.index === 1)
      throw new InputError(
        `${opts.agentBin}: not found${opts.agentBin.includes('/') ? '' : ' on PATH'}; nothing was uploaded`,
        'run this in a Buildkite job (where buildkite-agent is installed), or pass --agent-bin PATH; --dry-run DIR writes the batches instead',
      );
    if (r.exitCode !== 0 || r.failed) {
      const done = report.batches.slice(0, b.index - 1);
      const already = done.length ? `already uploaded: ${done.map((d) => `batch ${d.batch} (${jobsText(d.jobs)})`).join(', ')}` : 'nothing was uploaded';
      const why = r.exitCode !== undefined ? `${opts.agentBin} exited with ${r.exitCode}` : `${opts.agentBin} failed: ${r.shortMessage ?? 'no exit code'}`;
      throw new CheckFailed(
        `batch ${b.index}/${n} (${jobsText(b.jobs)}) failed: ${why}: ${agentMessage(String(r.all ?? ''))}\n${already}; ${b.index === n ? `batch ${n} was` : `batches ${b.index}-${n} were`} not uploaded`,
        done.length
          ? `the build keeps what was uploaded; fix the cause, then upload the rest: bkci pipeline upload --dry-run DIR, and buildkite-agent pipeline upload DIR/${batchFileName(b.index)} and the files after it, in order`
          : 'fix the cause and run the upload again',
      );
    }
    report.uploaded++;
    const out = String(r.all ?? '').trim();
    if (out) io.log.debug({ batch: b.index, agent: out.slice(-2000) }, 'agent output');
  }
  return report;
}

// The agent's reason: its error lines (it logs "fatal: ..." / "ERROR ..."), else its last lines.
export function agentMessage(output: string): string {
  const lines = output
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const errors = lines.filter((l) => /fatal|error|rejected|failed/i.test(l));
  const picked = (errors.length ? errors : lines).slice(-5).join(' | ');
  return (picked || '(no output)').slice(0, 2000);
}
