// `bkci node ...`: one isolated Buildkite agent per GPU on this host. One file per command beside this one.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { checkCommand } from './check.js';
import { doctorCommand } from './doctor.js';
import { setupCommand } from './setup.js';
import { statusCommand } from './status.js';
import { teardownCommand } from './teardown.js';

export function registerNodeCommands(program: Command, io: Io): void {
  const node = program.command('node').description('provision and look after one isolated Buildkite agent per GPU on this host');
  setupCommand(node, io);
  statusCommand(node, io);
  teardownCommand(node, io);
  doctorCommand(node, io);
  checkCommand(node, io);
}
