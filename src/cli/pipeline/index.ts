// `bkci pipeline ...`: render and validate pipelines. One file per command beside this one.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { renderCommand } from './render.js';
import { validateCommand } from './validate.js';

export function registerPipelineCommands(program: Command, io: Io): void {
  const pipeline = program.command('pipeline').description('render and validate Buildkite pipelines');
  renderCommand(pipeline, io);
  validateCommand(pipeline, io);
}
