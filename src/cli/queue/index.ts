// `bkci queue ...`: queue capacity from the agents API. One file per command beside this one.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { statusCommand } from './status.js';

export function registerQueueCommands(program: Command, io: Io): void {
  const queue = program.command('queue').description('queue capacity from the agents API');
  statusCommand(queue, io);
}
