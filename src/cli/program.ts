// The command tree: global flags and one group per domain. Wiring only.
import { Command, Option } from 'commander';
import type { Io } from '../util/io.js';
import { redact } from '../util/redact.js';
import { VERSION } from './version.js';

export { VERSION };

// The global flags that take a value (the word after them is not the command).
const VALUE_FLAGS = new Set(['--log-level', '--log-format']);

// The command group argv names (its first word that is not a global flag), if any.
export function commandGroup(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (VALUE_FLAGS.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

// The first option in a command's argv that the command does not know, skipping option values as
// commander does; undefined when there is none or help is asked for.
function firstUnknownOption(cmd: Command, argv: readonly string[]): string | undefined {
  const find = (flag: string) => cmd.options.find((o) => o.long === flag || o.short === flag);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (a === '-h' || a === '--help') return undefined;
    if (a.length < 2 || a[0] !== '-' || /^-\d/.test(a)) continue;
    const o = find(a);
    if (o) {
      if (o.required || (o.optional && i + 1 < argv.length && !argv[i + 1]!.startsWith('-'))) i++;
      continue;
    }
    if (a.startsWith('--') && a.includes('=') && find(a.slice(0, a.indexOf('=')))) continue;
    if (a[1] !== '-' && find(a.slice(0, 2))) continue;
    return a;
  }
  return undefined;
}

// commander checks missing and conflicting options before unknown ones, so `build submit --nope`
// would complain about something else than the typo. A command here reports an unknown option first.
class BkciCommand extends Command {
  override createCommand(name?: string): Command {
    return new BkciCommand(name);
  }

  override parseOptions(argv: string[]): { operands: string[]; unknown: string[] } {
    if (this.commands.length === 0) {
      const unknown = firstUnknownOption(this, argv);
      if (unknown !== undefined) (this as unknown as { unknownOption(flag: string): never }).unknownOption(unknown);
    }
    return super.parseOptions(argv);
  }
}

// commander's error text in bkci's words: `bkci: --flag "value": what is expected`, as every
// other usage error reads.
export function usageMessage(s: string): string {
  const text = s.replace(/^error: /, '');
  const opt = /^option '(?:-\w, )?(--[\w-]+)[^']*' argument '([\s\S]*?)' is invalid\. ([\s\S]*)$/.exec(text);
  if (opt) return `bkci: ${opt[1]} ${JSON.stringify(opt[2])}: ${opt[3]}`;
  const arg = /^command-argument value '([\s\S]*?)' is invalid for argument '([^']*)'\. ([\s\S]*)$/.exec(text);
  if (arg) return `bkci: <${arg[2]}> ${JSON.stringify(arg[1])}: ${arg[3]}`;
  const both = /^option '(?:-\w, )?(--[\w-]+)[^']*' cannot be used with option '(?:-\w, )?(--[\w-]+)[^']*'/.exec(text);
  if (both) return `bkci: ${both[1]} and ${both[2]} cannot be used together\n`;
  const bare = /^option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(text);
  if (bare) return `bkci: ${bare[1]} needs a value\n`;
  return `bkci: ${text}`;
}

type Register = (program: Command, io: Io) => void;

// Each group's module, loaded only when argv names the group (or help needs them all): a group's
// commands import their domain (the node vendors, the API client, fleet, upload...), and evaluating
// all of it, with the Node built-ins it pulls in (child_process, crypto, net, fs/promises), was a
// large part of a `pipeline render`. In the bundle each import() is a module evaluated on first use.
const GROUPS: Record<string, () => Promise<Register>> = {
  pipeline: async () => (await import('./pipeline/index.js')).registerPipelineCommands,
  node: async () => (await import('./node/index.js')).registerNodeCommands,
  build: async () => (await import('./build/index.js')).registerBuildCommands,
  queue: async () => (await import('./queue/index.js')).registerQueueCommands,
  fleet: async () => (await import('./fleet/index.js')).registerFleetCommands,
  self: async () => (await import('./self/index.js')).registerSelfCommands,
};

// The groups, in the order help lists them.
export const GROUP_NAMES: readonly string[] = Object.keys(GROUPS);

// The root command: global flags, error output and exit handling, no groups. Tests attach one
// command to it (see test/cli/commands/).
export function rootCommand(io: Io): Command {
  return new BkciCommand('bkci')
    .description('GPU CI on Buildkite: render and validate pipelines, provision per-GPU agents, drive builds')
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']))
    .addOption(
      new Option('--log-format <format>', 'log lines on stderr: text (level, message, key=value) or json (one object a line)').choices(['text', 'json']),
    )
    .option('-q, --quiet', 'only log errors')
    .option('--debug', 'debug logs and stack traces')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // commander's messages quote the values given (a mistyped --token-file may be a token).
      outputError: (s, write) => write(redact(usageMessage(s))),
    })
    .addHelpText(
      'after',
      `
Examples:
  bkci pipeline render .buildkite/test-template.j2 .buildkite/test-pipeline.yaml -D branch=main | buildkite-agent pipeline upload
  bkci pipeline validate pipeline.yml
  bkci pipeline render --diff-base origin/main --explain > pipeline.yml
  sudo bkci node setup --queue h100 --dry-run
  bkci build submit --branch main --wait --timeout 1h
  bkci queue status h100

Exit codes: 0 ok, 1 the checked thing failed (invalid pipeline, failed build, unfit GPU), 2 bad usage or input.
Environment: NO_COLOR disables colour; BUILDKITE_* variables fill defaults.`,
    );
}

// The whole tree, or (given argv) only the group it names: the others are not needed to parse it,
// and loading them is time a `pipeline render` in a CI bootstrap step would spend for nothing.
// Help, no command and an unknown one (commander suggests the nearest) get every group.
export async function buildProgram(io: Io, argv?: readonly string[]): Promise<Command> {
  const program = rootCommand(io);
  const group = argv && commandGroup(argv);
  const names = group !== undefined && Object.hasOwn(GROUPS, group) ? [group] : GROUP_NAMES;
  const registers = await Promise.all(names.map((g) => GROUPS[g]!()));
  for (const register of registers) register(program, io);
  return program;
}
