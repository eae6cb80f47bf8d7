// `bkci node setup`, start to end: gather facts, plan against what is on disk, and (unless a dry
// run) apply. The pieces are separate modules; this only strings them together.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Io } from '../util/io.js';
import { passwdHome } from './agent-env.js';
import { applyPlan, type ApplyResult } from './apply.js';
import { detectHost } from './detect/index.js';
import type { HostFacts, VendorChoice } from './detect/types.js';
import { planNodeSetup, type NodePlan, type SetupOptions } from './plan.js';
import { setupGates } from './setup-gates.js';
import { gatherState, readManifest } from './state.js';

export interface SetupRequest extends SetupOptions {
  vendor: VendorChoice;
  root: string;
  hostRoot: string;
  staging: boolean;
  // Run the agents unpinned where systemd or cgroup v1 would ignore AllowedCPUs= (a warning then).
  allowUnpinned?: boolean;
}

export async function prepareSetup(given: SetupRequest, io: Io): Promise<{ facts: HostFacts; plan: NodePlan }> {
  const facts = await detectHost(given.hostRoot, given.vendor, io);
  // HOME of the agents: the agent user's home on the host (none yet: useradd's default).
  const passwd = await readFile(join(given.hostRoot, 'etc/passwd'), 'utf8').catch(() => '');
  let req = { ...given, agentHome: given.agentHome ?? passwdHome(passwd, given.user) };
  const gates = await setupGates(req, io);
  if (gates.agentVersion) req = { ...req, agentVersion: gates.agentVersion };
  facts.warnings.push(...gates.warnings);
  // The draft names every path the plan may touch; it plans against the previous manifest too,
  // whose agents keep their names (src/node/identity.ts).
  const empty = { files: new Map(), dirs: new Set<string>(), manifest: await readManifest(req.root), userExists: true };
  const draft = planNodeSetup(facts, req, empty);
  const state = await gatherState(
    req.root,
    draft.files.map((f) => f.path),
    draft.dirs.map((d) => d.path),
    req.user,
    req.staging,
  );
  return { facts, plan: planNodeSetup(facts, req, state) };
}

export async function runSetup(plan: NodePlan, req: SetupRequest, start: boolean, io: Io): Promise<ApplyResult> {
  return applyPlan(plan, { root: req.root, runCommands: !req.staging, start, staging: req.staging, user: req.user }, io);
}
