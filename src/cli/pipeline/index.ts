// `bkci pipeline ...`: render, validate and upload pipelines. One file per command beside this one.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { generateCommand } from './generate.js';
import { lintCommand } from './lint.js';
import { renderCommand } from './render.js';
import { uploadCommand } from './upload.js';
import { validateCommand } from './validate.js';

export function registerPipelineCommands(program: Command, io: Io): void {
  const pipeline = program.command('pipeline').description('render, generate, validate and upload Buildkite pipelines');
  renderCommand(pipeline, io);
  validateCommand(pipeline, io);
  uploadCommand(pipeline, io);
  generateCommand(pipeline, io);
  lintCommand(pipeline, io);
}
