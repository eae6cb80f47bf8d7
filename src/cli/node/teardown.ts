// `bkci node teardown`: stop the agents and remove exactly the files setup created.
import type { Command } from 'commander';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { rootOf } from './shared.js';

export function teardownCommand(node: Command, io: Io): Command {
  return node
    .command('teardown')
    .description('stop and disable the agents and remove exactly the files setup created')
    .option('--root <dir>', 'tear down a staged tree under DIR (no systemctl)')
    .option('--purge', 'also remove the build directories')
    .option('--dry-run', 'print what would be removed')
    .option('--json', 'print JSON')
    .action(async (flags: { root?: string; purge?: boolean; dryRun?: boolean; json?: boolean }) => {
      const { root, staging } = rootOf(io, flags.root);
      if (!staging && !flags.dryRun && io.uid !== undefined && io.uid !== 0)
        throw new UsageError('bkci node teardown changes /etc and runs systemctl: run it as root (sudo)', 'or look first with --dry-run');
      const [{ readManifest }, { planTeardown, applyTeardown }] = await Promise.all([import('../../node/state.js'), import('../../node/apply.js')]);
      const m = await readManifest(root);
      if (!m) {
        io.log.info('nothing to tear down: no bkci manifest on this host');
        if (flags.json) io.stdout.write(JSON.stringify({ removed: [], kept: [] }) + '\n');
        return;
      }
      const t = planTeardown(m, flags.purge === true);
      if (flags.dryRun) {
        if (flags.json)
          io.stdout.write(
            JSON.stringify(
              { units: t.units, files: t.files, dirs: t.dirs, purge: t.purge, commands: staging ? [] : t.commands.map((c) => c.join(' ')) },
              null,
              2,
            ) + '\n',
          );
        else
          io.stdout.write(
            [
              ...(staging ? [] : t.commands.map((c) => `run    ${c.join(' ')}`)),
              ...t.files.map((f) => `remove ${f}`),
              ...t.dirs.map((d) => `rmdir  ${d} (if empty)`),
              ...t.purge.map((d) => `purge  ${d}`),
            ].join('\n') + '\n',
          );
        return;
      }
      const r = await applyTeardown(t, root, !staging, io);
      if (!flags.purge) io.log.info({ kept: m.dirs.filter((d) => d.kind === 'build').length }, 'kept the build directories (use --purge to remove them)');
      if (flags.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else io.stdout.write(r.removed.map((p) => `removed ${p}\n`).join(''));
    });
}
