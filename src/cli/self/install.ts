// `bkci self install`: copy the running single executable to PREFIX/bin/bkci.
import type { Command } from 'commander';
import { IN_EXECUTABLE } from '../../util/bundled.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';

export interface SelfInstallInput {
  // The installation prefix: the copy goes to PREFIX/bin/bkci (relative to the working directory).
  prefix: string;
  json: boolean;
}

export function installCommand(self: Command, io: Io, run: RunF<SelfInstallInput> = runSelfInstall): Command {
  const cmd = self
    .command('install')
    .description('copy this executable to PREFIX/bin/bkci (root-owned when run as root, mode 0755, atomically)')
    .option('--prefix <dir>', 'installation prefix', '/usr/local')
    .option('--json', 'print {path, changed, sha256} as JSON')
    .addHelpText('after', '\nExamples:\n  sudo ./bkci-linux-x64 self install\n  ./bkci-linux-x64 self install --prefix ~/.local');
  return cmd.action(async (flags: { prefix: string; json?: boolean }) => {
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          prefix: z.string().regex(/^[^\0\n\r]+$/, { error: 'a directory (the copy goes to PREFIX/bin/bkci)' }),
          json: z.boolean(),
        }),
      { prefix: flags.prefix, json: flags.json === true },
    );
    await run(input, io);
  });
}

export async function runSelfInstall(input: SelfInstallInput, io: Io): Promise<void> {
  const { applySelfInstall, planSelfInstall } = await import('../../self/install.js');
  const plan = planSelfInstall({ executable: IN_EXECUTABLE ? io.execPath : undefined, cwd: io.cwd, uid: io.uid }, input.prefix);
  const result = await applySelfInstall(plan);
  writeResult(io, input.json, result, (r) => `${r.changed ? 'installed' : 'unchanged'} ${r.path} (sha256 ${r.sha256})\n`);
}
