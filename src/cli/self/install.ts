// `bkci self install`: copy the running single executable to PREFIX/bin/bkci.
import type { Command } from 'commander';
import { IN_EXECUTABLE } from '../../util/bundled.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';

export function installCommand(self: Command, io: Io): Command {
  return self
    .command('install')
    .description('copy this executable to PREFIX/bin/bkci (root-owned when run as root, mode 0755, atomically)')
    .option('--prefix <dir>', 'installation prefix', '/usr/local')
    .option('--json', 'print {path, changed, sha256} as JSON')
    .addHelpText('after', '\nExamples:\n  sudo ./bkci-linux-x64 self install\n  ./bkci-linux-x64 self install --prefix ~/.local')
    .action(async (flags: { prefix: string; json?: boolean }) => {
      const { applySelfInstall, planSelfInstall } = await import('../../self/install.js');
      const plan = planSelfInstall({ executable: IN_EXECUTABLE ? io.execPath : undefined, cwd: io.cwd, uid: io.uid }, flags.prefix);
      const result = await applySelfInstall(plan);
      writeResult(io, flags.json ? 'json' : 'text', result, (r) => `${r.changed ? 'installed' : 'unchanged'} ${r.path} (sha256 ${r.sha256})\n`);
    });
}
