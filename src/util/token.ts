// Reading a token: from a file (bare, or a `NAME=token` line) given by a flag, else from its
// environment variable. The value is registered for redaction before anything else sees it.
import { InputError, UsageError } from './errors.js';
import type { Io } from './io.js';
import { registerSecret } from './redact.js';

export interface TokenSource {
  // The --token-file value, if given.
  file: string | undefined;
  // The environment variable (and the `NAME=` prefix a file may carry).
  variable: string;
  // Said when neither gives a token.
  missing: string;
  hint: string;
  // Hint on an unreadable or empty file (none when undefined).
  fileHint?: string;
  // Warn when the file is readable by other users.
  warnIfReadable?: boolean;
}

export async function readToken(src: TokenSource, io: Io): Promise<string> {
  let token: string | undefined;
  if (src.file !== undefined) {
    const [{ readFile, stat }, { resolve }] = await Promise.all([import('node:fs/promises'), import('node:path')]);
    const path = resolve(io.cwd, src.file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new InputError(`--token-file ${src.file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, src.fileHint);
    }
    if (src.warnIfReadable) {
      const mode = (await stat(path)).mode & 0o777;
      if (mode & 0o077) io.log.warn({ file: src.file, mode: mode.toString(8) }, 'the token file is readable by other users; chmod 600 it');
    }
    token = text.replace(new RegExp(`^\\s*${src.variable}=`), '').trim();
    if (!token) throw new InputError(`--token-file ${src.file} is empty`, src.fileHint);
  } else token = io.env[src.variable]?.trim() || undefined;
  if (!token) throw new UsageError(src.missing, src.hint);
  registerSecret(token);
  return token;
}
