// `bkci build artifacts`: list a build's artifacts, or download them (sha1-checked, paths kept).
import type { Command } from 'commander';
import { Option } from 'commander';
import { parseConcurrency } from '../../api/config.js';
import type { Io } from '../../util/io.js';
import { table, writeApiResult } from '../../util/output.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, type RunF, viaUsage } from '../command.js';
import { type BuildRef, buildRef, buildRefShape } from './shared.js';

export interface ArtifactsInput extends ApiInput {
  build: BuildRef;
  glob?: string;
  // The download directory, absolute.
  download?: string;
  // Downloads at once.
  concurrency: number;
}

export function artifactsCommand(build: Command, io: Io, run: RunF<ArtifactsInput> = runArtifacts): Command {
  const cmd = build
    .command('artifacts')
    .description('list a build’s artifacts, or download them (sha1-checked, paths kept)')
    .argument('<build>', 'build number or URL', buildRef)
    .option('--glob <glob>', 'only artifacts whose path matches (comma-separated globs, ** across directories)')
    .option('--download <dir>', 'download into DIR')
    .addOption(new Option('--concurrency <n>', 'with --download: files downloaded at once (1 to 64)').argParser(viaUsage(parseConcurrency)).default(4));
  apiOptions(cmd);
  return cmd.action(async (ref: BuildRef, flags: ApiFlagValues & { glob?: string; download?: string; concurrency: number }) => {
    const { resolve } = await import('node:path');
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          ...apiShape(z),
          build: buildRefShape(z),
          glob: z.string().optional(),
          download: z.string().optional(),
          concurrency: z.number().int().min(1).max(64),
        }),
      {
        ...apiInput(flags, io, ref),
        build: ref,
        glob: flags.glob,
        download: flags.download === undefined ? undefined : resolve(io.cwd, flags.download),
        concurrency: flags.concurrency,
      },
    );
    await run(input, io);
  });
}

export async function runArtifacts(input: ArtifactsInput, io: Io): Promise<void> {
  await withApi(input, io, true, async (api) => {
    const { selectArtifacts, downloadArtifacts, downloadProblems } = await import('../../api/artifacts.js');
    const { formatBytes } = await import('../../util/bytes.js');
    const chosen = selectArtifacts(await api.artifacts(input.build.number), input.glob);
    if (input.glob && chosen.length === 0) io.log.warn({ glob: input.glob }, 'no artifact matches the glob');
    if (!input.download) {
      writeApiResult(io, input.json, chosen, (list) =>
        table(
          io,
          ['path', 'size', 'state', 'job', 'id'],
          list.map((a) => [a.path, a.file_size != null ? formatBytes(a.file_size) : '', a.state ?? '', a.job_id ?? '', a.id ?? '']),
        ),
      );
      return;
    }
    const result = await downloadArtifacts(api.client, chosen, input.download, io, {
      concurrency: input.concurrency,
      onDone: (d) => io.log.info({ path: d.path, bytes: d.bytes }, d.skipped ? `${d.path} is already there (sha1 matches)` : `downloaded ${d.path}`),
    });
    writeApiResult(io, input.json, result.downloaded, (list) => list.map((d) => `${d.file}\n`).join(''));
    const problems = downloadProblems(result);
    if (problems) throw problems;
  });
}
