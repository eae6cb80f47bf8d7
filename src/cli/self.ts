// The command line that runs this bkci: what the systemd units of `node setup` run for the health check.
// At the depth of dist/cli/*.js, as the bundle's import.meta.url is (scripts/bundle.mjs).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IN_EXECUTABLE, INSTALLED_PATH } from '../util/bundled.js';
import type { Io } from '../util/io.js';

// How systemd runs this bkci for the health check: --bkci-bin, else node + the bin.js beside this
// module (dist/bundle/ or dist/cli/; from the TypeScript sources, the compiled dist/cli/bin.js).
// The single executable names its installed copy (`bkci self install`), not the file it was started
// from, which an operator may delete or replace after setup.
export function selfCommand(flag: string | undefined, io: Io): string[] {
  if (flag) return [flag];
  if (IN_EXECUTABLE) return [INSTALLED_PATH];
  const here = dirname(fileURLToPath(import.meta.url));
  const bin = /[\\/]src[\\/]cli$/.test(here) ? resolve(here, '../../dist/cli/bin.js') : resolve(here, 'bin.js');
  return [io.execPath ?? 'node', bin];
}
