// bkci's Jinja engine: Nunjucks' lexer with a Jinja2/minijinja grammar and evaluator, rendering the
// way minijinja-cli does by default.
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { EvalError } from './errors.js';
import type { Stmt } from './ast.js';
import { type AutoEscape, renderTemplate, type TemplateLoader } from './interpreter.js';
import { parseTemplate, type WhitespaceOptions } from './parser.js';

export { TemplateError } from './errors.js';
export { fromData, JFloat, Lazy, toPlain } from './values.js';

// minijinja picks autoescaping from the file name: a trailing `.j2` is ignored, then html/htm/xml
// escape HTML and json/json5/yaml/yml serialise values as JSON; anything else escapes nothing.
export function autoEscapeFor(name: string): AutoEscape {
  const base = name.replace(/\.j2$/, '');
  const ext = /\.([^./\\]+)$/.exec(base)?.[1] ?? '';
  if (['html', 'htm', 'xml', 'xhtml'].includes(ext)) return 'html';
  if (['json', 'json5', 'yaml', 'yml'].includes(ext)) return 'json';
  return 'none';
}

// Jinja drops a single trailing newline of the template source (keep_trailing_newline off).
function dropTrailingNewline(src: string): string {
  if (src.endsWith('\r\n')) return src.slice(0, -2);
  return src.endsWith('\n') ? src.slice(0, -1) : src;
}

export interface CompiledTemplate {
  name: string;
  render(context: Map<string, unknown>): string;
}

// minijinja-cli's --no-include (no other template loads) and --safe-path (only templates under
// these directories load; anything else is an error).
export interface LoadPolicy {
  noInclude?: boolean;
  safePaths?: string[];
}

// Whether `path` lies under one of `dirs` (whole path components, symbolic links resolved where
// the files exist, as minijinja-cli canonicalises both).
export function underSafePath(path: string, dirs: readonly string[]): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  const target = real(path);
  return dirs.some((d) => {
    const rel = relative(real(d), target);
    return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
  });
}

// Loads templates named by include/import/extends. As minijinja-cli joins them, a relative name is
// relative to the directory of the template that names it (the main template's for its own
// includes, `sub/` for the includes of `sub/a.j2`). A loaded template is named by its path as
// seen from where the main template's name starts, so two files of one name in different
// directories stay apart (and error messages say which).
export function fileLoader(baseDir: string, ws: WhitespaceOptions = {}, mainName?: string, policy: LoadPolicy = {}): TemplateLoader {
  const cache = new Map<string, { name: string; body: Stmt[] }>();
  // The directory of every template by name.
  const dirs = new Map<string, string>();
  if (mainName !== undefined) dirs.set(mainName, baseDir);
  return {
    load(name, from) {
      if (policy.noInclude) return undefined;
      const parentDir = dirs.get(from) ?? baseDir;
      const path = isAbsolute(name) ? normalize(name) : normalize(join(parentDir, name));
      if (policy.safePaths?.length && !underSafePath(path, policy.safePaths))
        throw new EvalError(`invalid operation: cannot include template ${name} from a path outside --safe-path`);
      const hit = cache.get(path);
      if (hit) return hit;
      let src: string;
      try {
        src = readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
      // Shown relative to where the main template's name points (`inc/sub/a.j2` beside `inc/main.j2`).
      const rel = relative(baseDir, path);
      const shown = rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : mainName === undefined ? rel : normalize(join(dirname(mainName), rel));
      dirs.set(shown, dirname(path));
      const t = { name: shown, body: parseTemplate(dropTrailingNewline(src), shown, ws) };
      cache.set(path, t);
      return t;
    },
  };
}

export function compileTemplate(
  source: string,
  name: string,
  opts: { baseDir?: string; autoescape?: AutoEscape; strictUndefined?: boolean; fuel?: number } & WhitespaceOptions & LoadPolicy = {},
): CompiledTemplate {
  const ws: WhitespaceOptions = { trimBlocks: opts.trimBlocks, lstripBlocks: opts.lstripBlocks };
  const body = parseTemplate(dropTrailingNewline(source), name, ws);
  // A mode given applies to every template (as minijinja-cli's --autoescape); else each template's
  // comes from its name.
  const fixed = opts.autoescape;
  const autoescape = fixed ?? autoEscapeFor(name);
  const loader = fileLoader(opts.baseDir ?? dirname(name), ws, name, { noInclude: opts.noInclude, safePaths: opts.safePaths });
  return {
    name,
    render: (context) =>
      renderTemplate(body, context, {
        name,
        autoescape,
        autoescapeFor: fixed ? () => fixed : autoEscapeFor,
        loader,
        strictUndefined: opts.strictUndefined ?? false,
        fuel: opts.fuel,
      }),
  };
}
