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
      .option('--download <dir>', 'download into DIR'),
  ).action(async (ref: string, flags: CommonFlags & { glob?: string; download?: string }) => {
    const n = parseBuildRef(ref, flags);
    await withApi(flags, io, true, async (api) => {
      const { selectArtifacts, downloadArtifact } = await import('../../api/artifacts.js');
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
}
