// The command tree: global flags and one group per domain. Wiring only.
import { Command, Option } from 'commander';
import type { Io } from '../util/io.js';
import { registerBuildCommands } from './build/index.js';
import { registerFleetCommands } from './fleet/index.js';
import { registerNodeCommands } from './node/index.js';
import { registerPipelineCommands } from './pipeline/index.js';
import { registerQueueCommands } from './queue/index.js';
import { registerSelfCommands } from './self/index.js';
import { VERSION } from './version.js';

export { VERSION };

// The command group argv names (its first word that is not a global flag), if any.
export function commandGroup(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (a === '--log-level') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

const GROUPS: Record<string, (program: Command, io: Io) => void> = {
  pipeline: registerPipelineCommands,
  node: registerNodeCommands,
  build: registerBuildCommands,
  queue: registerQueueCommands,
  fleet: registerFleetCommands,
  self: registerSelfCommands,
};

// The whole tree, or (given argv) only the group it names: the others are not needed to parse it,
// and defining them is time a `pipeline render` in a CI bootstrap step would spend for nothing.
export function buildProgram(io: Io, argv?: readonly string[]): Command {
  const program = new Command('bkci')
    .description('GPU CI on Buildkite: render and validate pipelines, provision per-GPU agents, drive builds')
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']))
    .option('-q, --quiet', 'only log errors')
    .option('--debug', 'debug logs and stack traces')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, 'bkci: ')),
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
  const group = argv && commandGroup(argv);
  const only = group !== undefined && Object.hasOwn(GROUPS, group) ? GROUPS[group] : undefined;
  if (only) only(program, io);
  else for (const register of new Set(Object.values(GROUPS))) register(program, io);
  return program;
}
