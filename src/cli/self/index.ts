// `bkci self ...`: the single executable looking after itself.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { installCommand } from './install.js';

export function registerSelfCommands(program: Command, io: Io): void {
  const self = program.command('self').description('the single executable: install it where the units find it');
  installCommand(self, io);
}
