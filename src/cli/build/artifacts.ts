// `bkci build artifacts`: list a build's artifacts, or download them.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { table } from '../../util/output.js';
import { apiOptions, type CommonFlags, printJson, withApi } from '../api-command.js';
import { parseBuildRef } from './shared.js';

export function artifactsCommand(build: Command, io: Io): Command {
  return apiOptions(
    build
      .command('artifacts')
      .description('list a build’s artifacts, or download them (sha1-checked, paths kept)')
      .argument('<build>', 'build number or URL')
      .option('--glob <glob>', 'only artifacts whose path matches (comma-separated globs, ** across directories)')
      .option('--download <dir>', 'download into DIR')
      .option('--concurrency <n>', 'with --download: files downloaded at once', '4'),
  ).action(async (ref: string, flags: CommonFlags & { glob?: string; download?: string; concurrency: string }) => {
    const n = parseBuildRef(ref, flags);
    await withApi(flags, io, true, async (api) => {
      const { selectArtifacts, downloadArtifacts, downloadProblems } = await import('../../api/artifacts.js');
      const concurrency = (await import('../../api/config.js')).parseConcurrency(flags.concurrency);
      const { formatBytes } = await import('../../util/bytes.js');
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
      const result = await downloadArtifacts(api.client, chosen, dir, io, {
        concurrency,
        onDone: (d) => io.log.info({ path: d.path, bytes: d.bytes }, d.skipped ? `${d.path} is already there (sha1 matches)` : `downloaded ${d.path}`),
      });
      if (flags.json) printJson(io, result.downloaded);
      else io.stdout.write(result.downloaded.map((d) => `${d.file}\n`).join(''));
      const problems = downloadProblems(result);
      if (problems) throw problems;
    });
  });
}
