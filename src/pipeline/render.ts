// `bkci pipeline render`: gather the inputs (template, data, -D, changed files), render through the
// Jinja engine exactly as minijinja-cli prints, then validate the result.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IN_EXECUTABLE, readAsset } from '../util/bundled.js';
import { InputError } from '../util/errors.js';
import { readInput, readInputBytes, type Io } from '../util/io.js';
import { firstMatchingFile, gitChangedFiles, gitTrackedFiles, parseChangedFiles } from './changes.js';
import { parseDataFile, parseDefine } from './data.js';
import { compileTemplate, fromData, Lazy, TemplateError, toPlain, underSafePath } from './jinja/index.js';
import { deadPrefixes, selectSteps, type StepDecision } from './select.js';
import { sortedMap } from './jinja/values.js';
import { unselectedEntries, type UnselectedMode } from './unselected.js';
import { decodeUtf8, invalidUtf8Message } from './text-check.js';

// The bundled template: a file of the npm package, an asset of the single executable (named here
// by the path it has in the package, so messages read the same).
export const BUNDLED_TEMPLATE = IN_EXECUTABLE ? 'templates/default.j2' : fileURLToPath(new URL('../../templates/default.j2', import.meta.url));

export interface RenderRequest {
  template?: string;
  data?: string;
  defines: string[];
  strictUndefined: boolean;
  // ENV: every environment variable (minijinja-cli --env); the data and -D override it.
  envVariables?: boolean;
  // minijinja-cli's --trim-blocks and --lstrip-blocks.
  trimBlocks?: boolean;
  lstripBlocks?: boolean;
  // minijinja-cli's --no-include and --safe-path (directories templates may come from).
  noInclude?: boolean;
  safePaths?: string[];
  // minijinja-cli's --fuel: how much work the render may do (the engine's DEFAULT_FUEL if absent).
  fuel?: number;
  // minijinja-cli's --select: the dotted path of the data that becomes the context.
  select?: string;
  // minijinja-cli's --autoescape: by file name (auto, the default) or one mode for every template.
  autoescape?: 'auto' | 'none' | 'html' | 'json';
  changedFiles?: string;
  diffBase?: string;
  runAllPaths?: string[];
  runAll: boolean;
  nightly: boolean;
  onlySteps?: string[];
  stripBlankLines: boolean;
  noNewline?: boolean;
  // What the bundled template emits for steps the selection does not run (src/pipeline/unselected.ts).
  unselected?: UnselectedMode;
  // Count the jobs the pipeline would have under each --unselected choice (for --explain).
  jobsPerChoice?: boolean;
}

export interface RenderResult {
  text: string;
  templatePath: string;
  dataPath: string | undefined;
  decisions: StepDecision[];
  changedFiles: string[] | undefined;
  // With jobsPerChoice: the jobs of the rendered pipeline per --unselected choice ('default' = not given).
  jobsPerChoice?: Record<string, number>;
}

// The bundled template's name as the README and hints spell it; where no such file is in the
// working directory (bkci installed elsewhere, or the single executable), it names the bundled one.
const BUNDLED_NAME = 'templates/default.j2';

export function resolveTemplatePath(arg: string | undefined, cwd: string): string {
  if (arg) return arg.replace(/^\.\//, '') === BUNDLED_NAME && !existsSync(join(cwd, arg)) ? BUNDLED_TEMPLATE : arg;
  const local = join(cwd, '.buildkite/pipeline.j2');
  return existsSync(local) ? '.buildkite/pipeline.j2' : BUNDLED_TEMPLATE;
}

export function resolveDataPath(arg: string | undefined, cwd: string): string | undefined {
  if (arg) return arg;
  return existsSync(join(cwd, '.buildkite/test-pipeline.yaml')) ? '.buildkite/test-pipeline.yaml' : undefined;
}

// `env` (every BUILDKITE_* variable) and `buildkite` (the build's facts) from the environment.
export function buildkiteContext(env: Io['env']): Map<string, unknown> {
  const bk = Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('BUILDKITE_') && e[1] !== undefined);
  const get = (k: string) => env[`BUILDKITE_${k}`];
  const pr = get('PULL_REQUEST');
  const facts: [string, unknown][] = [
    ['branch', get('BRANCH')],
    ['commit', get('COMMIT')],
    ['message', get('MESSAGE')],
    ['pull_request', pr && pr !== 'false' ? pr : null],
    ['pull_request_base_branch', get('PULL_REQUEST_BASE_BRANCH')],
    ['pipeline_slug', get('PIPELINE_SLUG')],
    ['organization_slug', get('ORGANIZATION_SLUG')],
    ['build_number', get('BUILD_NUMBER')],
    ['build_id', get('BUILD_ID')],
    ['build_url', get('BUILD_URL')],
    ['source', get('SOURCE')],
    ['tag', get('TAG')],
    ['repo', get('REPO')],
  ];
  return new Map<string, unknown>([
    ['env', sortedMap(bk)],
    ['buildkite', sortedMap(facts.filter(([, v]) => v !== undefined))],
  ]);
}

export async function renderPipeline(req: RenderRequest, io: Io): Promise<RenderResult> {
  const templatePath = resolveTemplatePath(req.template, io.cwd);
  const dataPath = resolveDataPath(req.data, io.cwd);
  if (templatePath === '-' && dataPath === '-') throw new InputError('TEMPLATE and DATA cannot both be read from stdin');
  if (templatePath === BUNDLED_TEMPLATE && !dataPath) {
    throw new InputError(
      'no test list: the bundled template renders the steps of a DATA file',
      `pass one (bkci pipeline render templates/default.j2 tests.yaml) or create .buildkite/test-pipeline.yaml in ${io.cwd}`,
    );
  }
  // As minijinja-cli loads the main template through the same checks as the ones it includes.
  const safePaths = req.safePaths?.map((p) => resolve(io.cwd, p));
  if (safePaths?.length && templatePath !== '-') {
    if (!underSafePath(resolve(io.cwd, templatePath), safePaths))
      throw new InputError(
        `${templatePath}: the template is outside --safe-path (${req.safePaths!.join(', ')})`,
        'pass a --safe-path that holds it, or move the template',
      );
  }
  const source =
    IN_EXECUTABLE && templatePath === BUNDLED_TEMPLATE
      ? readAsset(BUNDLED_TEMPLATE)
      : utf8Text(await readInputBytes(templatePath, io, 'template'), templatePath === '-' ? '<stdin>' : templatePath, 'template');
  if (req.select !== undefined && !dataPath) throw new InputError('--select needs a DATA file to select from');
  const dataName = dataPath === '-' ? '<stdin>' : dataPath;
  const data = dataPath
    ? parseDataFile(utf8Text(await readInputBytes(dataPath, io, 'data file'), dataName!, 'data file'), dataName!, req.select)
    : new Map<string, unknown>();

  const context = buildkiteContext(io.env);
  if (req.envVariables) context.set('ENV', sortedMap(Object.entries(io.env).filter((e): e is [string, string] => e[1] !== undefined)));
  for (const [k, v] of data) context.set(k, v);

  let changed: string[] | undefined;
  if (req.changedFiles !== undefined) changed = parseChangedFiles(await readInput(req.changedFiles, io, 'changed-files list'));
  else if (req.diffBase !== undefined) changed = await gitChangedFiles(io.cwd, req.diffBase);
  if (changed) {
    context.set('changed_files', changed);
    context.set('list_file_diff', changed.join('|'));
    io.log.debug({ count: changed.length }, 'changed files');
  }
  let runAll = req.runAll;
  if (req.runAllPaths?.length && changed) {
    const hit = firstMatchingFile(changed, req.runAllPaths);
    if (hit) {
      runAll = true;
      io.log.info({ file: hit }, 'a changed file matches --run-all-paths: running everything');
    }
  }
  if (req.runAll || req.runAllPaths?.length) context.set('run_all', runAll ? '1' : '0');
  if (req.nightly) context.set('nightly', '1');

  // The selection is worked out when something asks for it (the template reading `selection`,
  // --explain, --only-steps): a template of its own (vLLM's) may never look.
  const steps = data.get('steps');
  let plainSteps: unknown[] | undefined;
  const stepList = () => (plainSteps ??= Array.isArray(steps) ? steps.map(toPlain) : []);
  let decisions: StepDecision[] | undefined;
  const decide = () => (decisions ??= selectSteps({ steps: stepList(), changedFiles: changed, runAll, nightly: req.nightly, onlySteps: req.onlySteps }));
  const selectionFor = (mode: UnselectedMode | undefined) =>
    new Lazy(() => {
      const entries = unselectedEntries(stepList(), decide(), mode);
      return sortedMap(decide().map((d, i) => [d.id, fromData(entries[i])]));
    });
  context.set('selection', selectionFor(req.unselected));
  if (req.onlySteps) {
    const unknown = req.onlySteps.filter((k) => !decide().some((d) => d.id === k));
    if (unknown.length)
      throw new InputError(`--only-steps: no step has the key or label ${unknown.map((k) => `'${k}'`).join(', ')}`, 'use the keys shown by --explain');
  }
  if (changed) await warnDeadPrefixes(stepList(), io);

  for (const def of req.defines) {
    const [k, v] = parseDefine(def);
    context.set(k, v);
  }

  const name = templatePath === '-' ? '<stdin>' : templatePath;
  let text: string;
  let jobsPerChoice: Record<string, number> | undefined;
  try {
    const t = compileTemplate(source, name, {
      baseDir: templatePath === '-' ? io.cwd : dirname(resolve(io.cwd, templatePath)),
      strictUndefined: req.strictUndefined,
      trimBlocks: req.trimBlocks,
      lstripBlocks: req.lstripBlocks,
      autoescape: req.autoescape === 'auto' ? undefined : req.autoescape,
      noInclude: req.noInclude,
      safePaths,
      fuel: req.fuel,
    });
    text = t.render(context);
    if (req.jobsPerChoice) {
      jobsPerChoice = {};
      for (const mode of [undefined, 'block', 'group-block', 'skip'] as const) {
        context.set('selection', selectionFor(mode));
        jobsPerChoice[mode ?? 'default'] = await countRenderedJobs(mode === req.unselected ? text : t.render(context));
      }
    }
  } catch (err) {
    if (err instanceof TemplateError) throw new InputError(err.message, 'fix the template at that position', { cause: err });
    // Recursion deeper than JavaScript's stack (before the engine's own limit of 500 levels).
    if (err instanceof RangeError && /call stack/i.test(err.message))
      throw new InputError(`${name}: the template recurses too deeply`, 'look for a macro, include or import that calls itself', { cause: err });
    throw err;
  }
  if (!req.noNewline) text += '\n';
  if (req.stripBlankLines) text = stripBlankLines(text);
  return {
    text,
    templatePath,
    dataPath,
    get decisions() {
      return decide();
    },
    changedFiles: changed,
    jobsPerChoice,
  };
}

// The jobs a rendered pipeline creates, counted as the server counts them (0 when it does not parse).
async function countRenderedJobs(text: string): Promise<number> {
  const [{ fastParseYaml }, { loadPipelineYaml }, { documentJobs }] = await Promise.all([
    import('../util/fast-yaml.js'),
    import('./yaml-load.js'),
    import('./upload/count.js'),
  ]);
  const docs = fastParseYaml(text)?.docs ?? loadPipelineYaml(text).docs.map((d) => d.value);
  return docs.reduce((n: number, d) => n + documentJobs(d), 0);
}

// What `sed '/^[[:space:]]*$/d'` does: drop every line that is empty or only white space.
// minijinja-cli reads the template and DATA into Rust strings: bytes that are not UTF-8 stop it.
function utf8Text(bytes: Uint8Array, name: string, what: string): string {
  const d = decodeUtf8(bytes);
  if ('text' in d) return d.text;
  const { line, col, byte } = d.invalid;
  throw new InputError(`${name}:${line}:${col}: ${invalidUtf8Message(byte, what, 'minijinja-cli')}`, 'convert the file, e.g. iconv -f LATIN1 -t UTF-8');
}

export function stripBlankLines(text: string): string {
  const lines = text.split('\n');
  const last = lines.pop();
  const kept = lines.filter((l) => !/^[\s]*$/.test(l));
  return kept.join('\n') + (kept.length ? '\n' : '') + (last && !/^\s*$/.test(last) ? last : '');
}

async function warnDeadPrefixes(steps: unknown[], io: Io): Promise<void> {
  if (!steps.length) return;
  const tracked = await gitTrackedFiles(io.cwd).catch(() => undefined);
  if (!tracked) return;
  for (const d of deadPrefixes(steps, tracked)) {
    const named = d.steps.length > 5 ? [...d.steps.slice(0, 5), `and ${d.steps.length - 5} more`] : d.steps;
    io.log.warn({ prefix: d.prefix, steps: named }, 'source_file_dependencies prefix matches no tracked file (typo? no change will select these steps)');
  }
}
