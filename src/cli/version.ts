// bkci's version: written into the bundle by scripts/bundle.mjs, read from package.json otherwise.
import { readFileSync } from 'node:fs';

declare const __BKCI_VERSION__: string | undefined;

export const VERSION =
  typeof __BKCI_VERSION__ === 'string'
    ? __BKCI_VERSION__
    : (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
