// `bkci build ...`: start, wait for and inspect builds through the REST API. One file per command beside this one.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { artifactsCommand } from './artifacts.js';
import { cancelCommand } from './cancel.js';
import { getCommand } from './get.js';
import { listCommand } from './list.js';
import { logsCommand } from './logs.js';
import { retryCommand } from './retry.js';
import { submitCommand } from './submit.js';
import { summaryCommand } from './summary.js';
import { waitCommand } from './wait.js';

export function registerBuildCommands(program: Command, io: Io): void {
  const build = program.command('build').description('start, wait for and inspect builds through the REST API');
  for (const add of [submitCommand, waitCommand, getCommand, listCommand, cancelCommand, logsCommand, artifactsCommand, retryCommand, summaryCommand])
    add(build, io);
}
