// Files that ship with bkci (the bundled pipeline template). The npm package has them on disk
// beside dist/; the single executable (scripts/build-exe.mjs) carries them as node:sea assets,
// named by their path in the repository, and defines __BKCI_EXECUTABLE__.
import { createRequire } from 'node:module';

declare const __BKCI_EXECUTABLE__: boolean | undefined;

// Where `bkci self install` puts the executable by default, and so what `node setup` run from the
// executable names in the units.
export const DEFAULT_PREFIX = '/usr/local';
export const INSTALLED_PATH = '/usr/local/bin/bkci';

// True in the single executable, where bundled files are assets and not files on disk.
export const IN_EXECUTABLE = typeof __BKCI_EXECUTABLE__ === 'boolean' && __BKCI_EXECUTABLE__;

// The text of a bundled file inside the executable (`templates/default.j2`).
export function readAsset(name: string): string {
  const require = createRequire(import.meta.url);
  return (require('node:sea') as { getAsset(key: string, encoding: string): string }).getAsset(name, 'utf8');
}
