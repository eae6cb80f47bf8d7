// `bkci fleet ...`: one fleet file (docs/fleet.md) turned into what each agent source needs, and
// checked against the agents connected now. One file per command beside this one.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { elasticCommand } from './elastic.js';
import { k8sCommand } from './k8s.js';
import { statusCommand } from './status.js';

export function registerFleetCommands(program: Command, io: Io): void {
  const fleet = program.command('fleet').description('one fleet file for systemd hosts, agent-stack-k8s and the Elastic CI Stack');
  k8sCommand(fleet, io);
  elasticCommand(fleet, io);
  statusCommand(fleet, io);
}
